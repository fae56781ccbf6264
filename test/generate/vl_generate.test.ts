// Generation with images on a Qwen3-VL of the tiny-vl preset's shape (with a 64-token vocabulary, so
// the image token is one of its ids): KV-cache decoding against teacher-forced full forwards over the
// prompt and the generated tokens with the same pixels (which checks the images in the prefill, the
// (t, h, w) positions and the rope delta of decoding), in batches mixing image and text-only prompts;
// the image changes the first step's distribution; and the errors of prompts and images that
// disagree.
import t from 'tap';

import { Model } from '../../src/engine/model.js';
import { GenerationRequestError, Qwen3GenerationEngine } from '../../src/generate/engine.js';
import type { ProcessedImage } from '../../src/model/vision/image-processor.js';
import { MODEL_PRESETS } from '../../src/model/presets.js';
import { prng } from '../../src/util/prng.js';
import { argmaxRow, fullBatch, tinyModel } from './helpers.js';

const VOCAB = 64;
const [VISION_START, VISION_END, IMAGE] = [58, 59, 60];

function tinyVl(seed: number): Model {
  const shape = MODEL_PRESETS['tiny-vl'];
  return Model.create(
    {
      ...shape,
      vocabSize: VOCAB,
      imageTokenId: IMAGE,
      mropeSection: [...shape.mropeSection],
      vision: { ...shape.vision, deepstackIndexes: [...shape.vision.deepstackIndexes] },
    },
    { seed, initStd: 0.3 },
  );
}

/** Random pixel rows for a (1, h, w) patch grid. */
function randomImage(seed: number, h: number, w: number): ProcessedImage {
  const rand = prng(seed);
  return { pixels: Float32Array.from({ length: h * w * 1536 }, () => 2 * rand() - 1), grid: [1, h, w] };
}

/** <|vision_start|>, one image token per merged 2x2 patch block, <|vision_end|>. */
function imageTokens(im: ProcessedImage): number[] {
  return [VISION_START, ...Array<number>((im.grid[0] * im.grid[1] * im.grid[2]) / 4).fill(IMAGE), VISION_END];
}

/**
 * Greedy continuation by full forwards, ending after `steps` tokens or at a sampled image token (the
 * requests stop there: a full forward would take it for one of the prompt's images).
 */
async function greedyReference(
  model: Model,
  prompt: number[],
  steps: number,
  images: ProcessedImage[],
): Promise<number[]> {
  const seq = [...prompt];
  while (seq.length < prompt.length + steps && seq[seq.length - 1] !== IMAGE) {
    const { logits } = await model.forward(fullBatch(model, seq, images), { logits: true });
    seq.push(argmaxRow(logits!, seq.length - 1, VOCAB));
  }
  return seq.slice(prompt.length);
}

const [square, wide, small] = [randomImage(1, 4, 4), randomImage(2, 4, 6), randomImage(3, 2, 2)];
const requests: { promptIds: number[]; images: ProcessedImage[] }[] = [
  { promptIds: [3, 7, ...imageTokens(square), 12, 4, 9], images: [square] },
  { promptIds: [5, 9, 2, 33, 17, 8, 21], images: [] },
  { promptIds: [...imageTokens(wide), 30, ...imageTokens(small), 11, 4, 19, 26], images: [wide, small] },
];

t.test('greedy decoding with images equals teacher-forced full forwards, image and text prompts batched', async (t) => {
  const model = tinyVl(1);
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  const steps = 10;
  const params = { temperature: 0, maxNewTokens: steps, ignoreEos: true, stopTokenIds: [IMAGE] };
  const results = await Promise.all(requests.map((r) => engine.generate({ ...r, params })));
  t.equal(engine.stats().sequences, 0, 'every sequence freed');
  await engine.close();
  for (const [i, r] of requests.entries())
    t.same(results[i].samples[0].tokenIds, await greedyReference(model, r.promptIds, steps, r.images), `request ${i}`);
});

t.test('sampled log-probs with images equal Model.forward over the finished sequence (|diff| < 1e-4)', async (t) => {
  const model = tinyVl(2);
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  const params = { temperature: 0.8, n: 3, maxNewTokens: 8, seed: 5, ignoreEos: true, stopTokenIds: [IMAGE] };
  const results = await Promise.all(requests.map((r) => engine.generate({ ...r, params })));
  await engine.close();
  for (const [i, r] of requests.entries())
    for (const [j, s] of results[i].samples.entries()) {
      // A sampled image token ends the sample unfed: the forward covers the tokens before it.
      const fed = s.tokenIds[s.tokenIds.length - 1] === IMAGE ? s.tokenIds.slice(0, -1) : s.tokenIds;
      const seq = [...r.promptIds, ...fed];
      const { logp } = await model.forward(fullBatch(model, seq, r.images), { temperature: params.temperature });
      const want = Array.from(logp.subarray(r.promptIds.length - 1, seq.length - 1));
      const worst = Math.max(...want.map((w, k) => Math.abs(w - s.logprobs[k])));
      const what = `request ${i}, sample ${j}: worst |diff| ${worst.toExponential(2)} over ${want.length} tokens`;
      t.ok(worst < 1e-4, what);
    }
});

t.test('a different image changes the distribution of the first generated token', async (t) => {
  const model = tinyVl(3);
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  const other = randomImage(4, 4, 4);
  const promptIds = requests[0].promptIds;
  const firstStep = async (image: ProcessedImage) =>
    (
      await engine.generate({ promptIds, images: [image], params: { temperature: 1, n: 4, maxNewTokens: 1, seed: 9 } })
    ).samples.map((s) => ({ token: s.tokenIds[0], logprob: s.logprobs[0] }));
  const [a, b, again] = [await firstStep(square), await firstStep(other), await firstStep(square)];
  await engine.close();
  t.same(again, a, 'the same image gives the same draws, bit for bit');
  t.notSame(b, a, 'another image of the same size gives other draws or log-probs');
  // The log-probs are the distributions of the prompt with each image (as the full forward gives them).
  for (const [image, draws] of [
    [square, a],
    [other, b],
  ] as const) {
    const { logits } = await model.forward(fullBatch(model, promptIds, [image]), { logits: true });
    const row = logits!.subarray((promptIds.length - 1) * VOCAB, promptIds.length * VOCAB);
    const lse = Math.log(row.reduce((sum, x) => sum + Math.exp(x), 0));
    for (const d of draws) t.ok(Math.abs(row[d.token] - lse - d.logprob) < 1e-4, `token ${d.token}: log-prob`);
  }
});

t.test("images that do not fit the prompt are the request's error, and leave the engine working", async (t) => {
  const model = tinyVl(4);
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  const params = { temperature: 0, maxNewTokens: 2 };
  const { promptIds } = requests[0];
  await t.rejects(engine.generate({ promptIds, images: [], params }), GenerationRequestError, 'image tokens, no image');
  await t.rejects(
    engine.generate({ promptIds, images: [wide], params }),
    /image tokens do not fit its images/,
    'an image of another size',
  );
  await t.rejects(engine.generate({ promptIds, images: [square, small], params }), /2 image\(s\) given but 1 found/);
  const ok = await engine.generate({ promptIds, images: [square], params });
  t.equal(ok.samples[0].tokenIds.length > 0, true, 'a fitting request still runs');
  await engine.close();

  const text = new Qwen3GenerationEngine(tinyModel(1), { blockSize: 4 });
  await t.rejects(
    text.generate({ promptIds: [1, 2], images: [square], params }),
    /has 1 image\(s\) but the model has no vision tower/,
  );
  await text.close();
});
