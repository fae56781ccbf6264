// The native Qwen3-VL vision tower against Hugging Face transformers 5.17: the tiny fixture
// (test/fixtures/hf/qwen3vl_tiny, scripts/fixtures/make_vl_moe_fixtures.py) holds, per sequence, the
// processor's pixel values and grids and the tower's intermediate outputs computed in float64 from
// float32 weights. The engine computes in float32 through 3 blocks, so it agrees to float32 accuracy:
// 1e-4 absolute plus 1e-4 relative on values of order 1-10.
import t from 'tap';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { patchInputs, visionParameters, visionTowerBackward, visionTowerForward } from '../../src/engine/vision.js';
import { cudaDevices } from '../../src/engine/system.js';
import { visionConfigFromHf } from '../../src/model/hf-vision-config.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { assertClose, dot, randn, rng } from '../helpers/numeric.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.join(here, '..', 'fixtures', 'hf', 'qwen3vl_tiny');
const hf = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
const config = visionConfigFromHf(hf.vision_config, 'config.json');
const weights = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
const params = visionParameters(config).map((p) => weights.readFloat32(`model.visual.${p.name}`));
const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));

t.test('every vision tensor of the checkpoint is a tower parameter of the shape transformers saved', async (t) => {
  const names = new Set(visionParameters(config).map((p) => `model.visual.${p.name}`));
  const inFile = [...weights.tensors.keys()].filter((k) => k.startsWith('model.visual.'));
  t.same(inFile.sort(), [...names].sort(), 'same names');
  for (const p of visionParameters(config))
    t.same(weights.tensors.get(`model.visual.${p.name}`)!.shape, p.shape, `${p.name} shape`);
});

for (const s of ['s0', 's1']) {
  t.test(`sequence ${s}: patch embedding, blocks, mergers match transformers`, async (t) => {
    const pixels = ref.readFloat32(`pixel_values.${s}`);
    const grids = ref.readInt32(`image_grid_thw.${s}`);
    const out = visionTowerForward(params, pixels, grids, config);
    assertClose(t, out.patchEmbed, ref.readFloat64(`vision.patch_embed.${s}`), 1e-5, 1e-5, 'patch_embed');
    out.blocks.forEach((b, i) =>
      assertClose(t, b, ref.readFloat64(`vision.blocks.${i}.${s}`), 1e-4, 1e-4, `blocks.${i}`),
    );
    out.deepstack.forEach((d, j) =>
      assertClose(t, d, ref.readFloat64(`vision.deepstack.${j}.${s}`), 1e-4, 1e-4, `deepstack.${j}`),
    );
    assertClose(t, out.merged, ref.readFloat64(`vision.merger.${s}`), 1e-4, 1e-4, 'merger');
  });
}

t.test('tower backward agrees with central differences of sum(probe * outputs)', async (t) => {
  // One small image (one 2x2 grid of merge blocks) keeps the check fast; every parameter tensor gets
  // a few probed elements, picked at random.
  const grids = Int32Array.from([1, 4, 4]);
  const r = rng(11);
  const pixels = randn(16 * patchInputs(config), r);
  const p = params.map((x) => Float32Array.from(x));
  const tokens = 4;
  const dMerged = randn(tokens * config.outHiddenSize, r);
  const dDeep = config.deepstackIndexes.map(() => randn(tokens * config.outHiddenSize, r));
  const loss = (): number => {
    const o = visionTowerForward(p, pixels, grids, config);
    return dot(o.merged, dMerged) + o.deepstack.reduce((s, d, j) => s + dot(d, dDeep[j]), 0);
  };
  const grads = visionTowerBackward(p, pixels, grids, config, dMerged, dDeep);
  const names = visionParameters(config).map((x) => x.name);
  const h = 1e-2;
  for (let i = 0; i < p.length; i++) {
    for (let k = 0; k < 3; k++) {
      const e = Math.floor(r() * p[i].length);
      const keep = p[i][e];
      p[i][e] = keep + h;
      const up = loss();
      p[i][e] = keep - h;
      const down = loss();
      p[i][e] = keep;
      const fd = (up - down) / (2 * h);
      // float32 forward with h = 1e-2: the difference quotient carries ~1e-4 of rounding and h^2 terms.
      const tol = 2e-3 + 2e-2 * Math.abs(fd);
      t.ok(Math.abs(grads[i][e] - fd) <= tol, `${names[i]}[${e}]: backward ${grads[i][e]} vs fd ${fd}`);
    }
  }
});

t.test('the tower runs on the named backend: the CPU by default, an absent one refused', async (t) => {
  const grids = Int32Array.from([1, 4, 4]);
  const r = rng(12);
  const pixels = randn(16 * patchInputs(config), r);
  const dMerged = randn(4 * config.outHiddenSize, r);
  const dDeep = config.deepstackIndexes.map(() => randn(4 * config.outHiddenSize, r));
  // 'cpu' is the default. 'cuda-guard' takes the device path (arrays copied into backend memory, outputs and
  // gradients copied back) on CUDA's memory contract over the CPU ops: the CPU's results, bit for bit.
  const want = {
    out: visionTowerForward(params, pixels, grids, config),
    grads: visionTowerBackward(params, pixels, grids, config, dMerged, dDeep),
  };
  for (const backend of ['cpu', 'cuda-guard'] as const) {
    t.same(visionTowerForward(params, pixels, grids, config, { backend }), want.out, `${backend}: outputs`);
    const grads = visionTowerBackward(params, pixels, grids, config, dMerged, dDeep, { backend });
    t.same(grads, want.grads, `${backend}: gradients`);
  }
  if (cudaDevices().count === 0)
    t.throws(() => visionTowerForward(params, pixels, grids, config, { backend: 'cuda' }), /cuda|CUDA/);
});
