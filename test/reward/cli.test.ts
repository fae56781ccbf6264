// `medix reward` end to end: a YAML config with a judge and an ONNX embedding model, a JSONL file
// in and out, records with every component under the method's names, reasons and `unavailable`
// markers; stdin/stdout; bad input named by file and line, with no output file left behind.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { judgeServer } from '../helpers/judge-server.js';
import { writeTinyEncoder } from '../helpers/tiny-encoder.js';
import { medixAsync as medix } from '../cli/run-medix.js';

const cli = join(import.meta.dirname, '../../src/cli/medix.ts');
const dir = mkdtempSync(join(tmpdir(), 'medix-reward-cli-'));
writeTinyEncoder(dir);
const resp = (tag: string, answer: string) =>
  `<${tag}><thinking>findings reviewed</thinking><answer>${answer}</answer>`;

t.test('scores a JSONL file with a judge and an embedding model', async (t) => {
  const judge = await judgeServer(0);
  t.teardown(judge.close);
  const config = join(dir, 'reward.yaml');
  writeFileSync(
    config,
    `reward:\n  workers: 1\n  judge:\n    base_url: ${judge.url}\n    model: tiny-judge\n    max_attempts: 1\n  embedding:\n    model: model.onnx\n    tokenizer: tokenizer.json\n    pooling: mean\n`,
  );
  const rows = [
    { response: resp('X_RAY', 'lobar pneumonia.'), ground_truth: '<X_RAY> lobar pneumonia', id: 'a' },
    { response: resp('CT_SCAN', 'right lower lobe pneumonia'), ground_truth: '<X_RAY> lobar pneumonia', id: 'b' },
    { response: 'it is a glioma', ground_truth: '<MRI_SCAN> glioma', id: 'c' },
    { response: resp('X_RAY', 'Answer: B'), ground_truth: '<X_RAY> pleural effusion', id: 'd' },
  ];
  const input = join(dir, 'in.jsonl');
  writeFileSync(input, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n\n`);
  const r = await medix(['reward', '--config', config, '--input', input, '--output', join(dir, 'out.jsonl')]);
  t.equal(r.status, 0, r.stderr);
  const out = readFileSync(join(dir, 'out.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.same(
    out.map((o) => o.id),
    ['a', 'b', 'c', 'd'],
    'one record per input row, in order, input fields kept',
  );
  for (const k of ['overall', 'format', 'accuracy_llm', 'accuracy_embed', 'modality', 'reasons', 'unavailable'])
    t.ok(k in out[0], `field ${k}`);
  t.same([out[0].overall, out[0].format, out[0].accuracy_llm, out[0].accuracy_embed, out[0].modality], [1, 1, 1, 1, 1]);
  t.equal(out[1].accuracy_llm, 1, 'judged YES');
  t.equal(out[1].modality, 0);
  t.equal(out[2].format, 0);
  t.equal(out[2].accuracy_llm, 1, 'no answer block: the whole response is the answer');
  t.match(out[3].reasons.accuracy_llm, /':'/);
  t.equal(judge.requests, 2, 'exact and invalid answers need no judge');
  t.match(r.stderr, /4 scored, 0 dropped, 1 exact matches; judge: 2 calls/);
  t.notMatch(r.stderr, /falls back/, 'no fallback warning with both models configured');

  judge.fail = true;
  const down = await medix(['reward', '--config', config], `${JSON.stringify(rows[1])}\n`);
  t.equal(down.status, 0, down.stderr);
  const rec = JSON.parse(down.stdout);
  t.equal(rec.accuracy_llm, null);
  t.same(rec.unavailable, ['accuracy_llm']);
  t.match(rec.reasons.accuracy_llm, /^unavailable: .*HTTP 503/);
  t.type(rec.overall, 'number', 'renormalised over the other components');
});

t.test('defaults without a config, stdin to stdout, with fallbacks named; bad input named', async (t) => {
  const ok = spawnSync(process.execPath, ['--import', 'tsx', cli, 'reward'], {
    input: `${JSON.stringify({ response: resp('X_RAY', 'pneumonia'), ground_truth: '<X_RAY> lobar pneumonia' })}\n`,
    encoding: 'utf8',
  });
  t.equal(ok.status, 0, ok.stderr);
  const rec = JSON.parse(ok.stdout);
  t.match(rec.reasons, {
    accuracy_llm: /^fallback: case-insensitive match/,
    accuracy_embed: /^fallback: trigram cosine/,
  });
  t.match(ok.stderr, /no judge configured[\s\S]*no embedding model configured/);

  const input = join(dir, 'bad.jsonl');
  const output = join(dir, 'never.jsonl');
  writeFileSync(
    input,
    `${JSON.stringify({ response: 'x y', ground_truth: '<X_RAY> a b' })}\n{"response": 3, "ground_truth": "x"}\n`,
  );
  const bad = spawnSync(process.execPath, ['--import', 'tsx', cli, 'reward', '--input', input, '--output', output], {
    encoding: 'utf8',
  });
  t.not(bad.status, 0);
  t.match(bad.stderr, /bad\.jsonl:2: field 'response' must be a string/);
  t.notOk(existsSync(output), 'no partial output file');
  // Bytes that are not UTF-8 are named by their line, never scored as U+FFFD text.
  const good = Buffer.from(`${JSON.stringify({ response: 'x', ground_truth: '<X_RAY> a' })}\n`);
  const cafe = [Buffer.from('{"response":"caf'), Buffer.from([0xe9]), Buffer.from('","ground_truth":"<X_RAY> a"}\n')];
  writeFileSync(input, Buffer.concat([good, ...cafe]));
  const latin1 = spawnSync(process.execPath, ['--import', 'tsx', cli, 'reward', '--input', input], {
    encoding: 'utf8',
  });
  t.not(latin1.status, 0);
  t.match(latin1.stderr, /bad\.jsonl:2: not valid UTF-8/);
  // An earlier run's output is scored again with --rescore, its reward fields replaced, the others kept.
  const rescore = (extra: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', cli, 'reward', ...extra], {
      input: JSON.stringify({ ...rec, overall: -7, id: 'r1' }),
      encoding: 'utf8',
    });
  t.match(rescore([]).stderr, /stdin:1: field '.*' would be replaced .*--rescore/);
  const again = rescore(['--rescore']);
  t.equal(again.status, 0, again.stderr);
  t.same(JSON.parse(again.stdout), { ...rec, id: 'r1' }, 'the same scores, the other fields kept');
  writeFileSync(join(dir, 'typo.yaml'), 'judge:\n  base_url: http://127.0.0.1:9/v1\n  model: j\n  timeout: 3\n');
  const typo = spawnSync(process.execPath, ['--import', 'tsx', cli, 'reward', '--config', join(dir, 'typo.yaml')], {
    input: '',
    encoding: 'utf8',
  });
  t.not(typo.status, 0);
  t.match(typo.stderr, /typo\.yaml: judge: .*timeout/);
});

t.test('a failing custom reward names its line, with no stack trace; input fields are never overwritten', async (t) => {
  writeFileSync(
    join(dir, 'fns.mjs'),
    "export const boom = (r) => { if (r.includes('bad')) throw new Error('kaboom'); return 1; };\n" +
      "export const text = () => '0.5';\n",
  );
  const row = (response: string, extra = {}) =>
    JSON.stringify({ response: resp('X_RAY', response), ground_truth: '<X_RAY> a', ...extra });
  const run = (fn: string, lines: string[]) => {
    writeFileSync(join(dir, 'custom.yaml'), `custom:\n  - function: fns.mjs:${fn}\n    weight: 0.1\n`);
    writeFileSync(join(dir, 'custom-in.jsonl'), `${lines.join('\n')}\n`);
    const args = ['reward', '--config', join(dir, 'custom.yaml'), '--input', join(dir, 'custom-in.jsonl')];
    return spawnSync(process.execPath, ['--import', 'tsx', cli, ...args, '--output', join(dir, 'custom-out.jsonl')], {
      encoding: 'utf8',
    });
  };
  // The failing line is the last: the earlier ones are still being scored when it fails.
  const boom = run('boom', [row('a'), row('a'), row('bad')]);
  t.not(boom.status, 0);
  t.match(boom.stderr, /custom-in\.jsonl:3: custom reward 'fns\.mjs:boom' threw: kaboom/);
  t.notMatch(boom.stderr, /\n\s+at /, 'no stack trace');
  t.notOk(existsSync(join(dir, 'custom-out.jsonl')), 'no output file');
  const text = run('text', [row('a')]);
  t.match(text.stderr, /custom-in\.jsonl:1: .*returned the string "0\.5", expected a finite number/);
  const folder = spawnSync(process.execPath, ['--import', 'tsx', cli, 'reward', '--input', dir], { encoding: 'utf8' });
  t.match(folder.stderr, /--input .*: a folder/, 'a folder as --input is named');
  writeFileSync(join(dir, 'one.jsonl'), `${row('a')}\n`);
  // A pipe (bash's <(...), a FIFO) is not a regular file, and is read.
  const cmd = `"${process.execPath}" --import tsx "${cli}" reward --input <(cat "${join(dir, 'one.jsonl')}")`;
  const piped = spawnSync('bash', ['-c', cmd], { encoding: 'utf8' });
  t.equal(piped.status, 0, `a pipe as --input is read: ${piped.stderr}`);
  // EasyR1's reward_function runs on each line, told the record's response_length; a record without one is named.
  writeFileSync(
    join(dir, 'hook.mjs'),
    'export const score = (rs, kw) => rs.map((r) => ({ overall: kw.scale * r.response_length, n: 1 }));\n',
  );
  writeFileSync(join(dir, 'hook.yaml'), 'reward_function: hook.mjs:score\nreward_function_kwargs:\n  scale: 0.25\n');
  writeFileSync(
    join(dir, 'hook-in.jsonl'),
    `${row('a', { response_length: 2 })}\n${row('b', { response_length: 3 })}\n`,
  );
  const hook = spawnSync(
    process.execPath,
    ['--import', 'tsx', cli, 'reward', '--config', join(dir, 'hook.yaml'), '--input', join(dir, 'hook-in.jsonl')],
    { encoding: 'utf8' },
  );
  t.equal(hook.status, 0, hook.stderr);
  const hooked = hook.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.same(
    hooked.map((r) => [r.overall, r.custom.reward_function, r.custom['reward_function/n']]),
    [
      [0.5, 0.5, 1],
      [0.75, 0.75, 1],
    ],
    "reward_function's overall replaces the composite's, per line",
  );
  writeFileSync(join(dir, 'hook-in.jsonl'), `${row('a')}\n`);
  const unsized = spawnSync(
    process.execPath,
    ['--import', 'tsx', cli, 'reward', '--config', join(dir, 'hook.yaml'), '--input', join(dir, 'hook-in.jsonl')],
    { encoding: 'utf8' },
  );
  t.match(unsized.stderr, /hook-in\.jsonl:1: field 'response_length' .* must be an integer >= 0/);
  const taken = run('boom', [row('a', { format: 'dicom' })]);
  t.not(taken.status, 0);
  t.match(taken.stderr, /custom-in\.jsonl:1: field 'format' would be replaced by the reward's own 'format'/);
});
