// The vision tower in the activation plan and under recompute: a batch's image patches add the tower's
// activations to the plan (in proportion to the patches), recompute plans less for them, and with
// recompute the tower's blocks are recomputed in backward with gradients bit-identical to keeping them.
import t from 'tap';
import { Model, type Qwen3Config } from '../../src/engine/model.js';
import { MODEL_PRESETS } from '../../src/model/presets.js';
import { packExperience } from '../../src/train/experience.js';
import { visualTokenCount } from '../../src/model/vision/image-processor.js';
import { expandImagePads } from '../../src/tokenizer/image-pads.js';
import { randn, rng, sameBits } from '../helpers/numeric.js';

const IMAGE = 7;
const shape = MODEL_PRESETS['tiny-vl'];
const config: Qwen3Config = {
  ...shape,
  vocabSize: 48,
  imageTokenId: IMAGE,
  mropeSection: [...shape.mropeSection],
  vision: { ...shape.vision, depth: 3, deepstackIndexes: [0] },
};

t.test('image patches add the tower to the plan; recompute plans less for it', async (t) => {
  const model = Model.create(config);
  const text = model.activationPlan(128);
  const withImages = model.activationPlan(128, true, 256);
  t.equal(text.visionBytes, 0, 'no patches, no tower');
  t.ok(withImages.visionBytes > 0, `256 patches: ${withImages.visionBytes} bytes`);
  t.equal(withImages.totalBytes, text.totalBytes + withImages.visionBytes, 'the total counts the tower');
  t.equal(model.activationPlan(128, true, 512).visionBytes, 2 * withImages.visionBytes, 'in proportion to the patches');
  // Without training the tower frees each block's activations once the next op has read them.
  const inference = model.activationPlan(128, false, 256).visionBytes;
  t.ok(inference > 0 && inference < withImages.visionBytes, `inference: ${inference} < ${withImages.visionBytes}`);
  const deeper = Model.create({ ...config, vision: { ...config.vision!, depth: 6 } });
  t.equal(deeper.activationPlan(128, false, 256).visionBytes, inference, 'inference: one block at a time, any depth');
  model.setVisionFrozen(true);
  t.equal(model.activationPlan(128, true, 256).visionBytes, inference, 'a frozen tower trains as for inference');
  model.setVisionFrozen(false);
  model.setRecompute(true);
  const recomputed = model.activationPlan(128, true, 256);
  t.ok(
    recomputed.visionBytes < withImages.visionBytes,
    `recompute: ${recomputed.visionBytes} < ${withImages.visionBytes}`,
  );
  const textOnly = Model.create({ ...config, vision: undefined, imageTokenId: undefined, mropeSection: undefined });
  t.throws(() => textOnly.activationPlan(128, true, 256), /image patches given but the model has no vision tower/);
});

const images = [{ grid: [1, 4, 4] as [number, number, number], pixels: randn(16 * 1536, rng(1)) }];
const exp = {
  promptIds: expandImagePads([1, 2, IMAGE, 3], IMAGE, [visualTokenCount(images[0], 2)]),
  images,
  responseIds: [20, 21, 22],
};

t.test("with recompute the tower's gradients are bit-identical", async (t) => {
  const grads = async (recompute: boolean) => {
    const model = Model.create(config, { seed: 2, recompute });
    const { batch } = packExperience([exp], { imageTokenId: IMAGE, merge: 2 });
    const { logp } = await model.forward(batch, { training: true });
    await model.backward({ dlogp: Float32Array.from(logp, (_, i) => (i % 3) - 1) });
    return model
      .parameters()
      .filter((p) => p.name.startsWith('model.visual.'))
      .map((p) => model.getGradient(p.name));
  };
  const [plain, recomputed] = [await grads(false), await grads(true)];
  t.ok(
    plain.some((g) => g.some((v) => v !== 0)),
    'the tower gets gradients',
  );
  t.ok(
    plain.every((g, i) => sameBits(g, recomputed[i])),
    `all ${plain.length} tower gradients bit-identical`,
  );
});

t.test(
  "backward frees the tower's activations: a second backward, or one after freezing the tower, refuses",
  async (t) => {
    const model = Model.create(config, { seed: 2 });
    const { batch } = packExperience([exp], { imageTokenId: IMAGE, merge: 2 });
    const { logp } = await model.forward(batch, { training: true });
    const dlogp = Float32Array.from(logp, () => 1);
    await model.backward({ dlogp });
    await t.rejects(model.backward({ dlogp }), /vision tower's activations of the last forward were freed/);
    await model.forward(batch, { training: true });
    await model.backward({ dlogp });
    t.pass('a new forward makes backward possible again');
    await model.forward(batch, { training: true });
    model.setVisionFrozen(true);
    await t.rejects(model.backward({ dlogp }), /call forward with training: true first/, 'freezing after the forward');
  },
);
