// In-process `medix eval` on image questions: a tiny-vl candidate answers the rad_vqa fixture (three
// questions, one image each), and each answer is the generation engine's for the candidate's chat
// with that row's image file preprocessed on its own; a text-only candidate records image questions
// as errors instead of answering them blind.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { EngineChatModel } from '../../src/eval/engine-model.js';
import { candidateMessages } from '../../src/eval/prompt.js';
import { runEval } from '../../src/eval/run-eval.js';
import { DEFAULT_TASKS_FILE, loadTasks, selectTasks } from '../../src/eval/tasks.js';
import { createGenerationEngine } from '../../src/generate/engine.js';
import { createRandomModel } from '../../src/model/presets.js';
import { writeModelMetadata } from '../../src/model/save.js';
import { chatRequestParts } from '../../src/model/vision/chat-images.js';
import { ImagePool } from '../../src/model/vision/image-pool.js';
import { processImage, readImageProcessorConfig } from '../../src/model/vision/image-processor.js';
import { defaultTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';

const fixtures = join(import.meta.dirname, '..', 'fixtures', 'eval');
const root = mkdtempSync(join(tmpdir(), 'medix-eval-images-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const modelDir = join(root, 'model');
mkdirSync(modelDir);
const baseTokenizer = await loadTokenizer();
const model = createRandomModel('tiny-vl', { vocabSize: baseTokenizer.vocabSize, seed: 6 });
// The directory's tokenizer files and medix's Qwen3-VL chat template (the weights stay in memory).
writeModelMetadata(model, modelDir, { tokenizerDir: defaultTokenizerDir() });
const tokenizer = await loadTokenizer(modelDir);
const processor = readImageProcessorConfig(join(modelDir, 'preprocessor_config.json'));
const tasks = selectTasks(loadTasks(DEFAULT_TASKS_FILE), ['rad_vqa']);
const jsonLines = <T>(file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as T);
const rows = jsonLines<{ image: string; question: string }>(join(fixtures, 'vqa_rad.jsonl'));
const MAX_TOKENS = 6;

interface Generation {
  prompt: string;
  status: string;
  images: number;
  output?: string;
  error?: string;
}
const generations = (dir: string) => jsonLines<Generation>(join(dir, 'generations.jsonl'));

t.test('a tiny-vl candidate answers each image question from its image', async (t) => {
  const pool = new ImagePool(processor, 1);
  const engine = createGenerationEngine(model, { tokenizer });
  t.teardown(() => engine.close());
  const candidate = new EngineChatModel('tiny-vl', engine, tokenizer, { pool, merge: 2 });
  const out = join(root, 'vl');
  const result = await runEval({
    outputDir: out,
    phases: ['generate'],
    tasks,
    dataDir: fixtures,
    candidate,
    generation: { temperature: 0, maxTokens: MAX_TOKENS, concurrency: 2 },
  });
  await candidate.close();
  t.same([result.generate?.ok, result.generate?.errors], [3, 0], 'three answered, none failed');

  for (const g of generations(out)) {
    const row = rows.find((r) => g.prompt.includes(r.question))!;
    t.equal(g.images, 1, `${row.image}: one image`);
    const image = await processImage({ path: join(fixtures, row.image) }, processor, row.image);
    const messages = candidateMessages(g.prompt, ['data:,'], undefined);
    const request = chatRequestParts(tokenizer, messages, { addGenerationPrompt: true }, [image], 2);
    const want = await engine.generate({ ...request, params: { temperature: 0, maxNewTokens: MAX_TOKENS } });
    t.equal(g.output, want.samples[0].text, `${row.image}: the engine's answer with this image`);
  }
});

t.test('a text-only candidate records image questions as errors', async (t) => {
  const text = createRandomModel('tiny', { vocabSize: baseTokenizer.vocabSize, seed: 1 });
  const engine = createGenerationEngine(text, { tokenizer: baseTokenizer });
  const candidate = new EngineChatModel('tiny', engine, baseTokenizer);
  const out = join(root, 'text');
  const result = await runEval({
    outputDir: out,
    phases: ['generate'],
    tasks,
    dataDir: fixtures,
    candidate,
    generation: { temperature: 0, maxTokens: 2 },
  });
  t.same([result.generate?.ok, result.generate?.errors], [0, 3]);
  const refused = /text-only model \(no vision tower\) cannot answer/;
  t.ok(generations(out).every((g) => g.status === 'error' && refused.test(g.error!)));
  t.ok(
    generations(out).every((g) => /^\S+\.(jsonl|parquet)(:\d+|: row \d+): /.test(g.error!)),
    `each error names its data file and row: ${generations(out)[0].error}`,
  );
});
