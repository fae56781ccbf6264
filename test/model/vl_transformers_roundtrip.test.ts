// Qwen3-VL and Qwen3-VL-MoE directories written by medix (test/fixtures/hf/medix_written_vl*/, from
// scripts/fixtures/make_medix_written_vl.ts), as transformers sees them: on a machine with
// transformers, scripts/fixtures/check_transformers_vl_roundtrip.py loaded each unchanged and recorded
// its loading report and its own input_ids, pixel_values, image_grid_thw and logits for an image and
// a prompt (test/fixtures/hf/medix_written_vl.transformers.json). medix, fed the same ids, pixels and
// grid, must compute the same logits; a weight in the wrong layout must not.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Model, PackedBatch } from '../../src/engine/model.js';
import { loadModel } from '../../src/model/load.js';
import { multimodalPositions } from '../../src/model/vision/rope-index.js';

const hf = join(import.meta.dirname, '../fixtures/hf');
const checkFile = join(hf, 'medix_written_vl.transformers.json');
// float32 on both sides from the same bf16 weights; the vision tower and 2-3 layers of O(1) logits
// accumulate ~1e-5 of rounding, so 2e-4 leaves margin.
const TOL = 2e-4;
const MODELS = {
  medix_written_vl: {
    transformersClass: 'Qwen3VLForConditionalGeneration',
    perturb: 'model.visual.blocks.1.mlp.linear_fc2.weight',
  },
  medix_written_vl_moe: {
    transformersClass: 'Qwen3VLMoeForConditionalGeneration',
    perturb: 'model.language_model.layers.1.mlp.experts.down_proj',
  },
} as const;

interface TransformersCheck {
  class: string;
  error?: string;
  processor_error?: string;
  loading: { [kind: string]: string[] };
  input_ids: number[];
  image_grid_thw: number[];
  pixel_values: number[];
  vocab: number;
  logits: number[];
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`${a.length} logits against ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
  return max;
}

async function logitsOf(model: Model, batch: PackedBatch): Promise<Float32Array> {
  return (await model.forward(batch, { logits: true })).logits!;
}

const missing = existsSync(checkFile)
  ? undefined
  : `${checkFile} not made yet: run scripts/device/check-vl-roundtrip.sh ` +
    '(scripts/fixtures/check_transformers_vl_roundtrip.py) on a machine with transformers and commit its JSON';

for (const [name, want] of Object.entries(MODELS)) {
  t.test(`${name}: transformers loads it unchanged and medix computes its logits`, { skip: missing }, async (t) => {
    const rec: TransformersCheck = JSON.parse(readFileSync(checkFile, 'utf8'))[name];
    t.notOk(rec.error, `transformers ran: ${rec.error ?? 'no error'}`);
    if (rec.error) return;
    t.equal(rec.class, want.transformersClass);
    t.notOk(rec.processor_error, `AutoProcessor loaded the directory: ${rec.processor_error ?? 'no error'}`);
    for (const kind of ['missing_keys', 'unexpected_keys', 'mismatched_keys'])
      t.same(rec.loading[kind] ?? [], [], `transformers reports no ${kind.replace('_', ' ')}`);

    const model = await loadModel(join(hf, name));
    const tokens = Int32Array.from(rec.input_ids);
    const imageGrids = Int32Array.from(rec.image_grid_thw);
    const imageTokenId = model.config.imageTokenId!;
    const merge = model.config.vision!.spatialMergeSize;
    const batch: PackedBatch = {
      tokens,
      cuSeqlens: Int32Array.from([0, tokens.length]),
      targets: new Int32Array(tokens.length).fill(-1),
      positions: multimodalPositions(tokens, imageGrids, { imageTokenId, merge }),
      imageGrids,
      pixels: Float32Array.from(rec.pixel_values),
    };
    t.ok(tokens.includes(imageTokenId), 'the prompt holds image tokens');
    t.equal(rec.logits.length, tokens.length * rec.vocab, 'one row of logits per token');
    const diff = maxAbsDiff(await logitsOf(model, batch), rec.logits);
    t.ok(diff < TOL, `medix vs transformers' own logits: max |difference| ${diff.toExponential(2)} < ${TOL}`);

    // The comparison can fail: the same values in another order (as a tensor read in the wrong layout
    // would be) no longer match.
    model.setParameter(want.perturb, Float32Array.from(model.getParameter(want.perturb)).reverse());
    const off = maxAbsDiff(await logitsOf(model, batch), rec.logits);
    t.ok(off > TOL, `${want.perturb} in another order is caught: ${off.toExponential(2)} > ${TOL}`);
  });
}
