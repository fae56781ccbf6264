// Image rows in the RL update: a sample's preprocessed images reach the model in computeLogprobs and
// the update; the old log-probs of an image row equal the rollout's own (and move when the image is
// swapped); packing several samples keeps each one's images and multimodal positions (a packed
// micro-batch gives each sample what it gets alone); a frozen vision tower stays bit-identical
// through an update while an unfrozen one learns.
import t from 'tap';
import { Model, type Qwen3Config } from '../../src/engine/model.js';
import { AdamW } from '../../src/engine/optimizer.js';
import { createGenerationEngine } from '../../src/generate/engine.js';
import { MODEL_PRESETS } from '../../src/model/presets.js';
import { type ProcessedImage, visualTokenCount } from '../../src/model/vision/image-processor.js';
import { packExperience, type Experience } from '../../src/train/experience.js';
import { checkImageTokens, withoutImageToken } from '../../src/train/row-images.js';
import { expandImagePads } from '../../src/tokenizer/image-pads.js';
import { computeLogprobs, sftUpdate } from '../../src/train/update.js';
import { closeness, randn, rng, sameBits } from '../helpers/numeric.js';

const IMAGE = 7;
const tinyVl = MODEL_PRESETS['tiny-vl'];
const config: Qwen3Config = {
  ...tinyVl,
  vocabSize: 48,
  imageTokenId: IMAGE,
  mropeSection: [...tinyVl.mropeSection],
  vision: { ...tinyVl.vision, deepstackIndexes: [...tinyVl.vision.deepstackIndexes] },
};
const vision = { imageTokenId: IMAGE, merge: 2 };

function image(h: number, w: number, seed: number): ProcessedImage {
  return { grid: [1, h, w], pixels: randn(h * w * 3 * 2 * 16 * 16, rng(seed)) };
}

/** Prompt ids around one pad per image, widened as the chat prompt's encoder widens them. */
function prompt(images: ProcessedImage[]): number[] {
  const counts = images.map((im) => visualTokenCount(im, vision.merge));
  return expandImagePads([1, 2, ...images.flatMap(() => [3, IMAGE, 4]), 5], IMAGE, counts);
}

function samples(): Experience[] {
  const a = [image(4, 4, 1)],
    c = [image(2, 4, 2), image(4, 2, 3)];
  return [
    { promptIds: prompt(a), images: a, responseIds: [20, 21, 22] },
    { promptIds: [1, 2, 5], responseIds: [23, 24] },
    { promptIds: prompt(c), images: c, responseIds: [25, 26, 27, 28] },
  ];
}

t.test("checkImageTokens holds a prompt's image token runs to the preprocessed images", async (t) => {
  const images = [image(4, 4, 1), image(2, 4, 2)];
  t.doesNotThrow(() => checkImageTokens([1, IMAGE, IMAGE, IMAGE, IMAGE, 2, IMAGE, IMAGE], images, vision, 'row 1'));
  t.throws(
    () => checkImageTokens([1, IMAGE, 2, IMAGE], images, vision, 'row 2'),
    /row 2: the prompt holds image token runs \[1, 1\] but the preprocessed images take \[4, 2\]/,
  );
  t.throws(
    () => checkImageTokens([1, IMAGE, IMAGE, IMAGE, IMAGE, 2], images, vision, 'row 3'),
    /runs \[4\] but .* take \[4, 2\]/,
  );
});

t.test(
  'a packed micro-batch gives every sample the log-probs it gets alone, images and positions in order',
  async (t) => {
    const model = Model.create(config, { seed: 3 });
    const exps = samples();
    const packed = await computeLogprobs(model, exps, 3);
    const alone: Float32Array[] = [];
    for (const e of exps) alone.push((await computeLogprobs(model, [e], 1))[0]);
    exps.forEach((_, i) => t.ok(closeness(packed[i], alone[i], 1e-5, 1e-5) <= 1, `sample ${i}: packed as alone`));
    const reversed = await computeLogprobs(model, [...exps].reverse(), 3);
    exps.forEach((_, i) => t.ok(closeness(reversed[2 - i], alone[i], 1e-5, 1e-5) <= 1, `sample ${i}: reversed order`));
    const p = packExperience(exps, vision);
    t.same([...p.batch.imageGrids!], [1, 4, 4, 1, 2, 4, 1, 4, 2], 'grids in sample order');
    t.equal(p.batch.positions!.length, 3 * p.batch.tokens.length, 'three position rows');
  },
);

t.test('the log-probs depend on the image', async (t) => {
  const model = Model.create(config, { seed: 3 });
  const [e] = samples();
  const other = { ...e, images: [image(4, 4, 99)] };
  const a = await computeLogprobs(model, [e], 1),
    b = await computeLogprobs(model, [other], 1);
  const diff = Math.max(...a[0].map((v, i) => Math.abs(v - b[0][i])));
  t.ok(diff > 1e-4, `another image moves the response log-probs (max difference ${diff.toExponential(2)})`);
});

t.test("an image row's old log-probs equal the rollout's own, and move when the image is swapped", async (t) => {
  const model = Model.create(config, { seed: 3, initStd: 0.3 });
  const [row] = samples();
  const engine = createGenerationEngine(model, { eosTokenIds: [] });
  // As the trainer asks: a response ends at an image token, which is then dropped.
  const params = { n: 3, maxNewTokens: 8, temperature: 1, seed: 11, stopTokenIds: [IMAGE] };
  const rollout = (
    await engine.generate({ promptIds: row.promptIds, images: [...(row.images ?? [])], params })
  ).samples.map((s) => withoutImageToken(s, IMAGE));
  await engine.close();
  const exps = rollout.map((s) => ({ ...row, responseIds: s.tokenIds }));
  const old = await computeLogprobs(model, exps, 3);
  const swapped = await computeLogprobs(
    model,
    exps.map((e) => ({ ...e, images: [image(4, 4, 99)] })),
    3,
  );
  rollout.forEach((s, i) => {
    const worst = Math.max(...s.logprobs.map((v, k) => Math.abs(v - old[i][k])));
    t.ok(
      worst < 1e-4,
      `sample ${i}: old log-probs as sampled (worst |diff| ${worst.toExponential(2)} over ${s.tokenIds.length} tokens)`,
    );
    const moved = Math.max(...s.logprobs.map((v, k) => Math.abs(v - swapped[i][k])));
    t.ok(moved > 1e-3, `sample ${i}: another image gives other log-probs (max |diff| ${moved.toExponential(2)})`);
  });
});

t.test('images without a vision tower are refused', async (t) => {
  t.throws(() => packExperience(samples()), /experience 0: it has images but the model has no vision tower/);
});

t.test('an update on image rows trains the vision tower unless it is frozen', async (t) => {
  const tower = 'model.visual.blocks.0.attn.qkv.weight',
    text = 'model.language_model.layers.0.mlp.up_proj.weight';
  for (const frozen of [false, true]) {
    const model = Model.create(config, { seed: 3 });
    model.setVisionFrozen(frozen);
    const before = [model.getParameter(tower), model.getParameter(text)];
    const opt = new AdamW(model, { lr: 1e-2, weightDecay: 0.1 });
    await sftUpdate(model, opt, samples(), { miniBatch: 3, microBatch: 2, epochs: 1, temperature: 1, lr: () => 1e-2 });
    t.equal(
      sameBits(model.getParameter(tower), before[0]),
      frozen,
      `frozen ${frozen}: tower ${frozen ? 'unchanged' : 'updated'}`,
    );
    t.notOk(sameBits(model.getParameter(text), before[1]), `frozen ${frozen}: text model updated`);
  }
});
