// The whole Qwen3-VL model (vision tower, image tokens, deepstack, interleaved multimodal rope) against
// Hugging Face transformers 5.17 (test/fixtures/hf/qwen3vl_tiny and qwen3vl_moe_tiny, scripts/fixtures/make_vl_moe_fixtures.py):
// three packed sequences (images a then b; image c; text only), logits, log-probs of the targets and the
// gradient of sum(probe * logp) for every parameter, vision and text. Float32 against transformers'
// float64: logits within 2e-4 absolute (values O(1-10) through 3 vision blocks and 3 text layers);
// gradients within 1e-4 of each tensor's largest gradient plus 1e-3 relative, as for the text model.
import t, { type Test } from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Model, PackedBatch } from '../../src/engine/model.js';
import { loadModel } from '../../src/model/load.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { AdamW } from '../../src/engine/optimizer.js';
import { assertClose, gradientCloseness, sameBits } from '../helpers/numeric.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.join(here, '..', 'fixtures', 'hf', 'qwen3vl_tiny');

function concat<T extends Float32Array | Int32Array>(parts: T[], make: (n: number) => T): T {
  const out = make(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The fixture's packed batch with the images of sequences 0 and 1 (sequence 2 has none). */
function fixtureBatch(ref: SafetensorsFile): PackedBatch {
  return {
    tokens: ref.readInt32('tokens'),
    targets: ref.readInt32('targets'),
    cuSeqlens: ref.readInt32('cu_seqlens'),
    positions: ref.readInt32('positions'),
    imageGrids: concat(
      ['s0', 's1'].map((s) => ref.readInt32(`image_grid_thw.${s}`)),
      (n) => new Int32Array(n),
    ),
    pixels: concat(
      ['s0', 's1'].map((s) => ref.readFloat32(`pixel_values.${s}`)),
      (n) => new Float32Array(n),
    ),
  };
}

async function compareGradients(t: Test, model: Model, ref: SafetensorsFile, tag: string): Promise<void> {
  let compared = 0;
  for (const p of model.parameters()) {
    const key = `grad.${p.name}`;
    if (!ref.tensors.has(key)) {
      t.fail(`${tag}: reference has no gradient for ${p.name}`);
      continue;
    }
    const expected = ref.readFloat64(key);
    const c = gradientCloseness(model.getGradient(p.name), expected);
    t.ok(c <= 1, `${tag}: gradient of ${p.name} (worst ${c.toFixed(3)} x tolerance)`);
    compared++;
  }
  t.equal(compared, model.parameters().length, `${tag}: every parameter's gradient compared`);
}

// qwen3vl_moe_tiny is the same layout with mixture-of-experts text layers (8 experts, top 2): the
// vision tower and the experts together, against the same tolerances.
for (const [name, recompute] of [
  ['qwen3vl_tiny', false],
  ['qwen3vl_tiny', true],
  ['qwen3vl_moe_tiny', false],
] as const) {
  t.test(`${name} with images matches transformers${recompute ? ' (recompute)' : ''}`, async (t) => {
    const dir = path.join(here, '..', 'fixtures', 'hf', name);
    const model = await loadModel(dir, { recompute });
    t.ok(
      model.parameters().some((p) => p.name.startsWith('model.visual.')),
      'the vision tower is loaded',
    );
    const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
    const out = await model.forward(fixtureBatch(ref), { training: true, logits: true });
    assertClose(t, out.logits!, ref.readFloat64('logits'), 2e-4, 1e-4, 'logits');
    assertClose(t, out.logp, ref.readFloat64('logp'), 2e-4, 1e-4, 'log-probs of targets');
    model.zeroGrad();
    await model.backward({ dlogp: ref.readFloat32('probe') });
    await compareGradients(t, model, ref, `${name}${recompute ? ' recompute' : ''}`);
    ref.close();
  });
}

t.test('a frozen vision tower gets no gradient; the text model gets the same ones', async (t) => {
  const model = await loadModel(dir);
  const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
  model.setVisionFrozen(true);
  await model.forward(fixtureBatch(ref), { training: true });
  model.zeroGrad();
  await model.backward({ dlogp: ref.readFloat32('probe') });
  for (const p of model.parameters()) {
    const g = model.getGradient(p.name);
    if (p.name.startsWith('model.visual.'))
      t.ok(
        g.every((v) => v === 0),
        `${p.name}: zero`,
      );
    else {
      const expected = ref.readFloat64(`grad.${p.name}`);
      t.ok(gradientCloseness(g, expected) <= 1, `${p.name}: as unfrozen`);
    }
  }
  // With weight decay on, an AdamW step changes the text model and leaves the frozen tower bit-identical.
  const name = 'model.visual.blocks.0.attn.qkv.weight',
    text = 'model.language_model.layers.0.mlp.up_proj.weight';
  const [tower, lm] = [model.getParameter(name), model.getParameter(text)];
  await new AdamW(model, { lr: 1e-2, weightDecay: 0.1 }).step();
  t.ok(sameBits(model.getParameter(name), tower), 'tower unchanged by the update');
  t.notOk(sameBits(model.getParameter(text), lm), 'text model updated');
  ref.close();
});

t.test('image tokens and images must agree', async (t) => {
  const model = await loadModel(dir);
  const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
  const b = fixtureBatch(ref);
  // Only the first image: its 6 tokens cannot fill the batch's image tokens.
  const one = { ...b, imageGrids: b.imageGrids!.subarray(0, 3), pixels: b.pixels!.subarray(0, 24 * 1536) };
  await t.rejects(model.forward(one, {}), /image tokens but its images give/);
  await t.rejects(model.forward({ ...b, imageGrids: undefined, pixels: undefined }, {}), /image tokens but no images/);
  await t.rejects(model.forward({ ...b, imageGrids: Int32Array.from([1, 3, 4]) }, {}), /grid 0 \(1, 3, 4\)/);
  ref.close();
});
