// The engine's Qwen3 against Hugging Face transformers: fixtures in test/fixtures/hf were made by
// scripts/fixtures/make_hf_fixtures.py (transformers 5.17, float64 forward/backward of tiny random
// models with float32 weights). The engine computes in float32, so agreement is to float32
// accuracy: logits and log-probs within 2e-4 absolute (values are O(1-10), float32 carries ~7
// digits, and errors grow through 2 layers of attention and MLP), gradients within 1e-4 of each
// tensor's largest gradient plus 1e-3 relative.
import t from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadModel } from '../../src/model/load.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { assertClose, gradientCloseness } from '../helpers/numeric.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const fixtures = ['qwen3_tiny', 'qwen3_tiny_tied', 'qwen3vl_text_tiny'];

for (const name of fixtures) {
  t.test(`${name} matches transformers`, async (t) => {
    const dir = path.join(here, '..', 'fixtures', 'hf', name);
    for (const recompute of [false, true]) {
      const model = await loadModel(dir, { recompute });
      const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
      const tokens = ref.readInt32('tokens');
      const batch = {
        tokens,
        targets: ref.readInt32('targets'),
        cuSeqlens: ref.readInt32('cu_seqlens'),
        positions: ref.readInt32('positions'),
      };
      const out = await model.forward(batch, { training: true, logits: true });
      const tag = `${name}${recompute ? ' (recompute)' : ''}`;
      assertClose(t, out.logits!, ref.readFloat64('logits'), 2e-4, 1e-4, `${tag}: logits`);
      assertClose(t, out.logp, ref.readFloat64('logp'), 2e-4, 1e-4, `${tag}: log-probs of targets`);

      model.zeroGrad();
      await model.backward({ dlogp: ref.readFloat32('probe') });
      let compared = 0;
      for (const p of model.parameters()) {
        const key = `grad.${p.name}`;
        if (!ref.tensors.has(key) && p.name.startsWith('model.visual.')) {
          // A text-only batch never reaches the vision tower: transformers records no gradient for it.
          t.ok(
            model.getGradient(p.name).every((v) => v === 0),
            `${tag}: ${p.name} unused, zero gradient`,
          );
          compared++;
          continue;
        }
        t.ok(ref.tensors.has(key), `${tag}: reference has a gradient for ${p.name}`);
        const expected = ref.readFloat64(key);
        const c = gradientCloseness(model.getGradient(p.name), expected);
        t.ok(c <= 1, `${tag}: gradient of ${p.name} (worst ${c.toFixed(3)} x tolerance)`);
        compared++;
      }
      t.equal(compared, model.parameters().length, `${tag}: every parameter's gradient compared`);
      ref.close();
    }
  });
}
