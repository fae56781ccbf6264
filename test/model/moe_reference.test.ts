// The engine's Qwen3-MoE against Hugging Face transformers: fixtures in test/fixtures/hf/qwen3_moe_tiny*
// were made by scripts/fixtures/make_vl_moe_fixtures.py (transformers 5.17, float64, float32
// weights stored one tensor per expert). qwen3_moe_tiny: 8 experts, top-2, norm_topk_prob, layer 1
// dense (mlp_only_layers); _nonorm: raw top-2 probabilities, only layer 1 sparse (decoder_sparse_step
// 2). Tolerances as for the dense model (hf_reference.test.ts): the engine computes in float32.
import t, { type Test } from 'tap';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadModel } from '../../src/model/load.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import type { Model } from '../../src/engine/model.js';
import { assertClose, gradientCloseness } from '../helpers/numeric.js';

const here = path.dirname(fileURLToPath(import.meta.url));

function compareGradients(t: Test, model: Model, ref: SafetensorsFile, prefix: string, tag: string): void {
  let compared = 0;
  for (const p of model.parameters()) {
    const key = `${prefix}${p.name}`;
    // transformers leaves no gradient where the loss does not reach (e.g. the head for the aux loss).
    const expected = ref.tensors.has(key) ? ref.readFloat64(key) : new Float64Array(p.numel);
    const c = gradientCloseness(model.getGradient(p.name), expected);
    t.ok(c <= 1, `${tag}: ${prefix}${p.name} (worst ${c.toFixed(3)} x tolerance)`);
    compared++;
  }
  t.equal(compared, model.parameters().length, `${tag}: every parameter's ${prefix} compared`);
}

for (const name of ['qwen3_moe_tiny', 'qwen3_moe_tiny_nonorm']) {
  t.test(`${name} matches transformers`, async (t) => {
    const dir = path.join(here, '..', 'fixtures', 'hf', name);
    for (const recompute of [false, true]) {
      const tag = `${name}${recompute ? ' (recompute)' : ''}`;
      const model = await loadModel(dir, { recompute });
      const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
      const batch = {
        tokens: ref.readInt32('tokens'),
        targets: ref.readInt32('targets'),
        cuSeqlens: ref.readInt32('cu_seqlens'),
      };
      const T = batch.tokens.length;
      const E = model.config.numExperts!;
      const out = await model.forward(batch, { training: true, logits: true });
      assertClose(t, out.logits!, ref.readFloat64('logits'), 2e-4, 1e-4, `${tag}: logits`);
      assertClose(t, out.logp, ref.readFloat64('logp'), 2e-4, 1e-4, `${tag}: log-probs of targets`);

      const routing = model.routing();
      const sparse = [...ref.tensors.keys()].filter((k) => k.startsWith('router_logits.')).length;
      t.ok(sparse > 0, `${tag}: the reference has router logits`);
      t.equal(routing.routerLogits!.length, sparse * T * E, `${tag}: router logits of ${sparse} sparse layer(s)`);
      for (let k = 0; k < sparse; k++)
        assertClose(
          t,
          routing.routerLogits!.subarray(k * T * E, (k + 1) * T * E),
          ref.readFloat64(`router_logits.${k}`),
          1e-4,
          1e-4,
          `${tag}: router logits of sparse layer ${k}`,
        );
      const S = batch.cuSeqlens.length - 1;
      const aux = Array.from({ length: S }, (_, s) => ref.readFloat64(`aux_loss.s${s}`)[0]);
      assertClose(t, routing.auxLoss, aux, 1e-5, 1e-5, `${tag}: load-balancing loss per sequence`);
      // Every token is routed to exactly top-k experts in each sparse layer.
      const load = routing.expertLoad.reduce((a, b) => a + b, 0);
      t.equal(load, sparse * T * model.config.numExpertsPerTok!, `${tag}: expert load counts every pick once`);

      model.zeroGrad();
      await model.backward({ dlogp: ref.readFloat32('probe') });
      compareGradients(t, model, ref, 'grad.', tag);

      // The gradient of the summed load-balancing losses alone (weight 1, no log-prob term).
      // A fresh forward: with recompute, backward leaves the shared activations of layer 0 behind.
      await model.forward(batch, { training: true });
      model.zeroGrad();
      model.setAuxLossWeight(1);
      await model.backward({ dlogp: new Float32Array(T) });
      compareGradients(t, model, ref, 'aux_grad.', tag);
      ref.close();
    }
  });
}

// Qwen3-VL-MoE's text model (fused expert tensors, interleaved multi-section rope): its fixture's
// last sequence has no image, so the engine can run it alone (transformers ran each sequence alone)
// and match its logits, router logits and load-balancing loss. The whole fixture, images and every
// gradient, is compared in qwen3vl_reference.test.ts.
t.test('qwen3vl_moe_tiny: the text-only sequence matches transformers', async (t) => {
  const dir = path.join(here, '..', 'fixtures', 'hf', 'qwen3vl_moe_tiny');
  const model = await loadModel(dir);
  const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
  const cu = ref.readInt32('cu_seqlens');
  const S = cu.length - 1;
  t.notOk(ref.tensors.has(`pixel_values.s${S - 1}`), 'the last sequence has no image');
  const [a, b] = [cu[S - 1], cu[S]];
  const T = b - a,
    V = model.config.vocabSize,
    E = model.config.numExperts!;
  const positions = ref.readInt32('positions');
  const rows = new Int32Array(3 * T);
  for (let p = 0; p < 3; p++)
    rows.set(positions.subarray((p * positions.length) / 3 + a, (p * positions.length) / 3 + b), p * T);
  const batch = {
    tokens: ref.readInt32('tokens').slice(a, b),
    targets: ref.readInt32('targets').slice(a, b),
    cuSeqlens: Int32Array.from([0, T]),
    positions: rows,
  };
  const out = await model.forward(batch, { logits: true });
  assertClose(t, out.logits!, ref.readFloat64('logits').subarray(a * V, b * V), 2e-4, 1e-4, 'logits');
  assertClose(t, out.logp, ref.readFloat64('logp').subarray(a, b), 2e-4, 1e-4, 'log-probs of targets');
  const routing = model.routing();
  for (let k = 0; k < 2; k++)
    assertClose(
      t,
      routing.routerLogits!.subarray(k * T * E, (k + 1) * T * E),
      ref.readFloat64(`router_logits.${k}`).subarray(a * E, b * E),
      1e-4,
      1e-4,
      `router logits of sparse layer ${k}`,
    );
  assertClose(t, routing.auxLoss, ref.readFloat64(`aux_loss.s${S - 1}`), 1e-5, 1e-5, 'load-balancing loss');
  ref.close();
});
