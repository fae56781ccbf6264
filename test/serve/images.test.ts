// `medix serve` with a tiny-vl model and image content parts, over real HTTP: a data: URL image gets
// the generation engine's answer for the chat prompt with that image; JPEG and local files (inside
// --allow-local-images only, symlinks resolved) give the same image; http(s) URLs are never fetched;
// the count, bytes and pixels limits and a corrupt image are 400s naming the limit and the part.
import t from 'tap';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';

import { createGenerationEngine } from '../../src/generate/engine.js';
import { createRandomModel } from '../../src/model/presets.js';
import { writeModelMetadata } from '../../src/model/save.js';
import { ImagePool } from '../../src/model/vision/image-pool.js';
import { processImage, readImageProcessorConfig, visualTokenCount } from '../../src/model/vision/image-processor.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { defaultTokenizerDir, encodeChatPrompt, loadTokenizer } from '../../src/tokenizer/index.js';

const root = mkdtempSync(join(tmpdir(), 'medix-serve-images-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
const modelDir = join(root, 'model');
const allowed = join(root, 'allowed');
mkdirSync(allowed);
const fixture = join(import.meta.dirname, '..', 'fixtures', 'hf', 'images', 'a.png');
copyFileSync(fixture, join(allowed, 'a.png'));
copyFileSync(join(import.meta.dirname, '..', 'fixtures', 'hf', 'images', 'c.png'), join(root, 'outside.png'));
symlinkSync(join(root, 'outside.png'), join(allowed, 'leak.png'));

const baseTokenizer = await loadTokenizer();
const model = createRandomModel('tiny-vl', { vocabSize: baseTokenizer.vocabSize, seed: 4 });
// The directory's tokenizer files and medix's Qwen3-VL chat template (the model's weights stay in memory).
mkdirSync(modelDir);
writeModelMetadata(model, modelDir, { tokenizerDir: defaultTokenizerDir() });
const tokenizer = await loadTokenizer(modelDir);
const processor = readImageProcessorConfig(join(modelDir, 'preprocessor_config.json'));
const png = readFileSync(fixture);
const dataUrl = (bytes: Buffer, mime = 'image/png') => `data:${mime};base64,${bytes.toString('base64')}`;
const QUESTION = 'Which organ is shown?';

const limits = { maxImages: 2, maxImageBytes: 40_000, maxImagePixels: 200 * 200 };
async function serve(allowLocalImages?: string): Promise<RunningServer> {
  const images = { pool: new ImagePool(processor, 1), merge: 2, limits, allowLocalImages };
  const engine = createGenerationEngine(model, { tokenizer });
  return startServer({ engine, tokenizer, modelName: 'tiny-vl', port: 0, images });
}

/** POSTs a chat whose user message holds `urls` as image_url parts, then the question. */
async function chat(server: RunningServer, urls: string[]) {
  const content = [...urls.map((url) => ({ type: 'image_url', image_url: { url } })), { type: 'text', text: QUESTION }];
  const body = { model: 'tiny-vl', messages: [{ role: 'user', content }], max_tokens: 6, temperature: 0 };
  const res = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

t.test("an image part gets the engine's answer with that image, from a data: URL or an allowed file", async (t) => {
  const server = await serve(realpathSync(allowed));
  t.teardown(() => server.close());
  const image = await processImage({ bytes: png }, processor, 'a.png');
  const content = [{ type: 'image' as const }, { type: 'text' as const, text: QUESTION }];
  const counts = [visualTokenCount(image, 2)];
  const { ids } = encodeChatPrompt(tokenizer, [{ role: 'user', content }], { enableThinking: true }, counts);
  const engine = createGenerationEngine(model, { tokenizer });
  const params = { temperature: 0, maxNewTokens: 6 };
  const want = (await engine.generate({ promptIds: ids, images: [image], params })).samples[0];
  await engine.close();

  const answer = await chat(server, [dataUrl(png)]);
  t.equal(answer.status, 200, JSON.stringify(answer.json));
  t.equal(answer.json.choices[0].message.content, want.text, "the engine's text");
  t.equal(answer.json.usage.prompt_tokens, ids.length, "prompt tokens count the image's tokens");
  for (const url of [pathToFileURL(join(allowed, 'a.png')).href, join(allowed, 'a.png'), 'a.png']) {
    const local = await chat(server, [url]);
    t.equal(local.json.choices?.[0].message.content, want.text, `the same image from ${url}`);
  }
  const jpeg = await chat(server, [dataUrl(await sharp(png).jpeg().toBuffer(), 'image/jpeg')]);
  t.equal(jpeg.status, 200, 'a JPEG data: URL is taken');
});

t.test('what the server refuses: a 400 naming the part, the limit or the rule', async (t) => {
  const server = await serve(realpathSync(allowed));
  t.teardown(() => server.close());
  const big = await sharp({ create: { width: 300, height: 300, channels: 3, background: '#404040' } })
    .png()
    .toBuffer();
  const cases: [string[], string, RegExp][] = [
    [[dataUrl(png), dataUrl(png), dataUrl(png)], 'messages.0.content.2', /3 images, more than .* \(--max-images 2\)/],
    [
      [dataUrl(png), dataUrl(readFileSync(join(root, 'outside.png')))],
      'messages.0.content.1',
      /70465 bytes, .*--max-image-bytes 40000/,
    ],
    [[dataUrl(big)], 'messages.0.content.0', /300 x 300 pixels, .*--max-image-pixels 40000/],
    [['data:image/png;base64,AAAA'], 'messages.0.content.0', /not a readable image/],
    [['data:image/gif;base64,AAAA'], 'messages.0.content.0', /must be base64 image\/png or image\/jpeg/],
    [['https://example.org/x.png'], 'messages.0.content.0', /never fetches http\(s\) URLs/],
    [[join(root, 'outside.png')], 'messages.0.content.0', /leaves the --allow-local-images directory/],
    [['leak.png'], 'messages.0.content.0', /is a link to .*outside\.png, outside the --allow-local-images directory/],
    [['missing.png'], 'messages.0.content.0', /cannot read image 'missing\.png' \(ENOENT\)/],
  ];
  for (const [urls, param, message] of cases) {
    const r = await chat(server, urls);
    t.equal(r.status, 400, `${message}: status`);
    t.equal(r.json.error.param, param, `${message}: param`);
    t.match(r.json.error.message, message);
  }
  const ok = await chat(server, [dataUrl(png)]);
  t.equal(ok.status, 200, 'the server still answers');

  const closed = await serve();
  t.teardown(() => closed.close());
  const local = await chat(closed, [join(allowed, 'a.png')]);
  t.equal(local.status, 400);
  t.match(local.json.error.message, /local image files are off; .*--allow-local-images DIR/);
});
