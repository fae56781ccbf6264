// `medix generate --image` on a tiny-vl model from create-model: the completion is the generation
// engine's for the chat prompt with the images placed before the text (pads expanded to each image's
// tokens) and the images' pixels, in --image order; a missing or corrupt image names the file.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { createGenerationEngine } from '../../src/generate/engine.js';
import { loadModel } from '../../src/model/load.js';
import { writeRandomModelDir } from '../../src/model/random-model-dir.js';
import { processImage, readImageProcessorConfig, visualTokenCount } from '../../src/model/vision/image-processor.js';
import { encodeChatPrompt, loadTokenizer } from '../../src/tokenizer/index.js';
import { medix } from './run-medix.js';

const root = mkdtempSync(join(tmpdir(), 'medix-generate-image-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, 'tiny-vl');
await writeRandomModelDir(dir, { preset: 'tiny-vl', seed: 3 });
const images = join(import.meta.dirname, '..', 'fixtures', 'hf', 'images');
const [a, b] = [join(images, 'a.png'), join(images, 'b.png')];
const PROMPT = 'Which organ is shown?';

/** The engine's greedy completion for the chat prompt with `files` as image parts before the text. */
async function direct(files: string[], maxNewTokens: number) {
  const [model, tokenizer] = await Promise.all([loadModel(dir), loadTokenizer(dir)]);
  const processor = readImageProcessorConfig(join(dir, 'preprocessor_config.json'));
  const processed = await Promise.all(files.map((f) => processImage({ path: f }, processor, f)));
  const content = [...files.map(() => ({ type: 'image' as const })), { type: 'text' as const, text: PROMPT }];
  const counts = processed.map((im) => visualTokenCount(im, processor.mergeSize));
  const { ids } = encodeChatPrompt(tokenizer, [{ role: 'user', content }], { enableThinking: true }, counts);
  const engine = createGenerationEngine(model, { tokenizer });
  const result = await engine.generate({ promptIds: ids, images: processed, params: { temperature: 0, maxNewTokens } });
  await engine.close();
  return { ids, counts, sample: result.samples[0] };
}

function generateJson(...args: string[]) {
  const r = medix('generate', '--model', dir, '--prompt', PROMPT, '--temperature', '0', '--json', ...args);
  if (r.status !== 0) throw new Error(`generate failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim()) as { text: string; prompt_tokens: number; token_ids: number[] };
}

t.test("--image: the engine's completion for the prompt with the images, in order", async (t) => {
  const cli = generateJson('--image', a, '--image', b, '--max-tokens', '8');
  const want = await direct([a, b], 8);
  t.ok(
    want.counts.every((n) => n > 1),
    `each image takes several tokens (${want.counts.join(', ')})`,
  );
  t.equal(cli.prompt_tokens, want.ids.length, 'prompt tokens count every visual token');
  t.same(cli.token_ids, want.sample.tokenIds, 'the same greedy tokens');
  t.equal(cli.text, want.sample.text);
  const swapped = await direct([b, a], 8);
  const text = medix(
    'generate',
    '--model',
    dir,
    '--prompt',
    PROMPT,
    '--temperature',
    '0',
    '--max-tokens',
    '8',
    '--image',
    b,
    '--image',
    a,
  );
  t.equal(text.status, 0, text.stderr);
  t.equal(text.stdout.trimEnd(), swapped.sample.text.trimEnd(), 'the swapped order, streamed as text');
});

// A text-only model given --image: test/cli/generate.test.ts (which has one).
t.test('a missing image and a corrupt one are refused by name', async (t) => {
  const missing = medix('generate', '--model', dir, '--prompt', PROMPT, '--image', join(root, 'nowhere.png'));
  t.equal(missing.status, 1);
  t.match(missing.stderr, /--image .*nowhere\.png: cannot read image .*nowhere\.png \(ENOENT\)/);
  const corrupt = join(root, 'corrupt.png');
  writeFileSync(corrupt, 'not a png at all');
  const bad = medix('generate', '--model', dir, '--prompt', PROMPT, '--image', corrupt);
  t.equal(bad.status, 1);
  t.match(bad.stderr, /--image .*corrupt\.png: not a readable image/);
});
