// `medix eval` on the project's own engine: the candidate is a tiny model directory run in-process,
// the judge a tiny model behind `medix serve` (startServer). A random tiny judge cannot write JSON
// verdicts, so every judgment must be recorded as an error, never as a silent 0, and the score
// phase must refuse to invent a score. A tiny-vl directory answers the image benchmarks in-process
// through the CLI: images from files (rad_vqa's JSONL) and from bytes in a Parquet column (path_vqa).
import t from 'tap';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../../src/engine/model.js';
import { createGenerationEngine } from '../../src/generate/engine.js';
import { saveModel } from '../../src/model/save.js';
import { writeRandomModelDir } from '../../src/model/random-model-dir.js';
import { startServer } from '../../src/serve/server.js';
import { defaultTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';
import { tinyQwen3Config } from '../helpers/tiny-config.js';

const run = promisify(execFile);
const medix = join(import.meta.dirname, '../../src/cli/medix.ts');
const fixtures = join(import.meta.dirname, '../fixtures/eval');

t.test('in-process candidate and a served judge, end to end', async (t) => {
  const tokenizer = await loadTokenizer();
  const tiny = (seed: number) => Model.create({ ...tinyQwen3Config, vocabSize: tokenizer.vocabSize }, { seed });
  const dir = mkdtempSync(join(tmpdir(), 'medix-own-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const candidateDir = join(dir, 'candidate');
  saveModel(tiny(1), candidateDir, { tokenizerDir: defaultTokenizerDir() });
  const judge = await startServer({
    engine: createGenerationEngine(tiny(2), { tokenizer }),
    tokenizer,
    modelName: 'tiny-judge',
    port: 0,
  });
  t.teardown(() => judge.close());
  const out = join(dir, 'out');
  const result = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      medix,
      'eval',
      '--tasks',
      'mmlu_anatomy',
      '--data-dir',
      fixtures,
      '--output-dir',
      out,
      '--model',
      candidateDir,
      '--max-tokens',
      '8',
      '--judge-url',
      `${judge.url}/v1`,
      '--judge-model',
      'tiny-judge',
      '--judge-max-tokens',
      '8',
      '--judge-attempts',
      '1',
    ],
    { timeout: 120_000 },
  ).then(
    () => ({ code: 0, stderr: '' }),
    (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
  );
  const read = (f: string) =>
    readFileSync(join(out, f), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  const gens = read('generations.jsonl');
  t.equal(gens.length, 4, 'every question answered by the in-process candidate');
  t.ok(
    gens.every((g) => typeof g.output === 'string' && g.finish_reason === 'length'),
    'answers recorded (8 tokens each, cut at max tokens)',
  );
  const judged = read('judgments.jsonl');
  const scored = judged.filter((j) => typeof j.score === 'number');
  t.ok(judged.length >= 1, 'the served judge was asked');
  t.ok(judged.filter((j) => j.error).length + scored.length === judged.length, 'each judgment is a score or an error');
  t.equal(scored.length, 0, 'a random tiny judge writes no valid verdict');
  t.equal(judged.filter((j) => j.error).length, 4, 'all four recorded as judge errors');
  t.not(result.code, 0, 'nothing to score: the run says so and fails, instead of scoring 0');
  t.match(result.stderr, /no task has a judged sample/);
});

t.test('an in-process tiny-vl candidate answers the image benchmarks through the CLI', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medix-own-vl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const candidateDir = join(dir, 'candidate');
  await writeRandomModelDir(candidateDir, { preset: 'tiny-vl', seed: 2 });
  const out = join(dir, 'out');
  const args = ['eval', '--phase', 'generate', '--tasks', 'rad_vqa', 'path_vqa', '--data-dir', fixtures];
  await run(
    process.execPath,
    ['--import', 'tsx', medix, ...args, '--output-dir', out, '--model', candidateDir, '--max-tokens', '4'],
    { timeout: 120_000 },
  );
  const gens = readFileSync(join(out, 'generations.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { task: string; status: string; images: number; output?: string });
  for (const task of ['rad_vqa', 'path_vqa']) {
    const mine = gens.filter((g) => g.task === task);
    t.ok(mine.length >= 2, `${task}: ${mine.length} questions`);
    t.ok(
      mine.every((g) => g.status === 'ok' && g.images === 1 && typeof g.output === 'string'),
      `${task}: each answered with its image`,
    );
  }
});
