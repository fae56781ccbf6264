// A model computing in bf16 (worker.actor.model.dtype / --compute-dtype): f32 master weights and a
// bf16 compute copy. On bf16-valued weights it is the f32 model to f32 summation error; on any
// weights it is within bf16 rounding of it; the copy follows setParameter and optimizer steps; a few
// training steps move the loss as f32 training does; cached decoding reads the bf16 copy (and a bf16
// KV cache); a MoE model's router and experts compute in bf16; a Qwen3-VL tower computes in bf16.
import t from 'tap';
import { join } from 'node:path';

import { bf16ToF32, computeDtype, f32ToBf16, setComputeDtype } from '../../src/engine/bf16.js';
import { Model, packSequences, type Qwen3Config } from '../../src/engine/model.js';
import { AdamW } from '../../src/engine/optimizer.js';
import { sftLoss } from '../../src/rl/sft-loss.js';
import { Qwen3GenerationEngine, createGenerationEngine } from '../../src/generate/engine.js';
import { charTokenizer, tinyConfig } from '../generate/helpers.js';
import { closeness, randInt, rng, sameBits } from '../helpers/numeric.js';
import { loadModel } from '../../src/model/load.js';
import { referenceBatch } from '../helpers/image-batch.js';

const cfg: Qwen3Config = {
  vocabSize: 256,
  hiddenSize: 48,
  intermediateSize: 96,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 12,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: false,
};

const round = (x: Float32Array) => bf16ToF32(f32ToBf16(x));
function roundWeights(model: Model) {
  for (const p of model.parameters()) model.setParameter(p.name, round(model.getParameter(p.name)));
}
const maxAbs = (x: Float32Array) => x.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

// Two sequences, one past 128 tokens so the panel GEMM runs as well as the few-row kernel.
const batch = (() => {
  const r = rng(21);
  return packSequences([Array.from(randInt(150, r, 0, 256)), Array.from(randInt(9, r, 0, 256))]);
})();

async function logits(model: Model, dtype: 'f32' | 'bf16') {
  setComputeDtype(model, dtype);
  const out = await model.forward(batch, { logits: true });
  return { logits: out.logits!, logp: out.logp };
}

t.test('on bf16-valued weights, bf16 compute is the f32 model to f32 summation error', async (t) => {
  const model = Model.create(cfg, { seed: 5, initStd: 0.3 });
  roundWeights(model);
  const f32 = await logits(model, 'f32');
  const bf16 = await logits(model, 'bf16');
  t.equal(computeDtype(model), 'bf16');
  // Same products and terms, summed in another order where the GEMM works on panels: f32 error of
  // sums of a few hundred terms through two layers, far below bf16's 2^-9 relative rounding.
  const scale = maxAbs(f32.logits);
  t.ok(maxDiff(bf16.logits, f32.logits) <= 1e-5 * scale, `logits (scale ${scale.toFixed(2)})`);
  t.ok(maxDiff(bf16.logp, f32.logp) <= 1e-4, 'log-probs');
});

t.test('on f32 weights, bf16 logits are within bf16 rounding of the f32 logits', async (t) => {
  const model = Model.create(cfg, { seed: 6, initStd: 0.3 });
  const f32 = await logits(model, 'f32');
  const bf16 = await logits(model, 'bf16');
  // Each weight moves by up to 2^-9 of itself (about 2^-10 on average); through two layers and the
  // head the logits move by a few times that relative to their scale: 2% bounds it with room, while a
  // bf16 copy of the wrong weights (or none) would move them by their own size.
  const scale = maxAbs(f32.logits);
  const d = maxDiff(bf16.logits, f32.logits);
  t.ok(d > 0, 'the products really ran in bf16');
  t.ok(d <= 0.02 * scale, `logits: max difference ${d.toExponential(2)} <= 2% of ${scale.toFixed(2)}`);
  t.ok(closeness(bf16.logp, f32.logp, 0.05, 0) <= 1, 'log-probs within 0.05 nats');
});

// A sparse layer's router and experts read the bf16 copy: two MoE models whose router and expert
// weights differ only below bf16 precision take the same step in bf16 (log-probs and every gradient, bit
// for bit) and not in f32; on bf16-valued weights bf16 compute is the f32 model to summation error.
t.test('a mixture-of-experts model: the router and the experts compute in bf16', async (t) => {
  const moe = { ...cfg, numExperts: 4, numExpertsPerTok: 2, moeIntermediateSize: 32 };
  const sparse = /^model\.layers\.\d+\.mlp\.(gate\.weight|experts\.gate_up_proj|experts\.down_proj)$/;
  const [plain, rounded] = [0, 0].map(() => Model.create(moe, { seed: 10, initStd: 0.3 }));
  const names = rounded
    .parameters()
    .filter((p) => sparse.test(p.name))
    .map((p) => p.name);
  t.equal(names.length, 3 * cfg.numLayers, `the routers and experts: ${names.length} tensors`);
  for (const name of names) rounded.setParameter(name, round(rounded.getParameter(name)));
  const step = async (m: Model, dtype: 'f32' | 'bf16') => {
    setComputeDtype(m, dtype);
    m.zeroGrad();
    const { logp } = await m.forward(batch, { training: true });
    await m.backward({ dlogp: new Float32Array(logp.length).fill(-1 / logp.length) });
    const grads = m.parameters().flatMap((p) => [...m.getGradient(p.name)]);
    return { logp, grads: Float32Array.from(grads), router: m.getGradient('model.layers.0.mlp.gate.weight') };
  };
  const [a, b] = [await step(plain, 'bf16'), await step(rounded, 'bf16')];
  t.ok(sameBits(a.logp, b.logp), 'bf16: the same log-probs, bit for bit');
  t.ok(sameBits(a.grads, b.grads), 'bf16: the same gradients, bit for bit');
  t.ok(maxAbs(a.router) > 0, 'the router gets a gradient through the bf16 path');
  const [c, d] = [await step(plain, 'f32'), await step(rounded, 'f32')];
  t.notOk(sameBits(c.logp, d.logp), 'f32: the rounding of the routers and experts changes the log-probs');
  // bf16-valued weights: the router's products are the f32 ones (to summation order), so the same
  // experts are chosen and the logits agree as for the dense model.
  roundWeights(plain);
  const f32 = await logits(plain, 'f32');
  const bf16 = await logits(plain, 'bf16');
  t.ok(maxDiff(bf16.logits, f32.logits) <= 1e-5 * maxAbs(f32.logits), 'logits on bf16-valued weights');
});

t.test('the compute copy follows setParameter and optimizer steps', async (t) => {
  const model = Model.create(cfg, { seed: 7, initStd: 0.3 });
  setComputeDtype(model, 'bf16');
  const before = (await model.forward(batch)).logp;
  // An optimizer step changes the master weights; the next bf16 forward must see the new values.
  const mask = Float32Array.from(batch.targets, (x) => (x >= 0 ? 1 : 0));
  const { logp } = await model.forward(batch, { training: true });
  model.zeroGrad();
  await model.backward({ dlogp: sftLoss(logp, mask, batch.cuSeqlens, { agg: 'token-mean' }).dlogp });
  await new AdamW(model, { lr: 1e-2, weightDecay: 0 }).step();
  const after = (await model.forward(batch)).logp;
  // The reference: the stepped weights, the decoder's projections rounded to bf16 (the fused log-prob
  // head, the embedding and the norms read the f32 master weights in either dtype).
  const reference = Model.create(cfg, { seed: 7, initStd: 0.3 });
  for (const p of model.parameters()) {
    const w = model.getParameter(p.name);
    reference.setParameter(p.name, p.name.endsWith('_proj.weight') ? round(w) : w);
  }
  const want = (await reference.forward(batch)).logp;
  t.ok(maxDiff(after, before) > 1e-3, 'the step changed the bf16 forward');
  t.ok(maxDiff(after, want) <= 1e-4, 'it is the f32 forward of the stepped weights rounded to bf16');
  // setParameter likewise.
  const name = 'model.layers.0.mlp.down_proj.weight';
  model.setParameter(name, new Float32Array(model.getParameter(name).length));
  reference.setParameter(name, new Float32Array(reference.getParameter(name).length));
  t.ok(maxDiff((await model.forward(batch)).logp, (await reference.forward(batch)).logp) <= 1e-4, 'setParameter');
});

async function train(dtype: 'f32' | 'bf16', steps: number): Promise<number[]> {
  const model = Model.create(cfg, { seed: 8 });
  setComputeDtype(model, dtype);
  const sentence = packSequences([Array.from(Buffer.from('Metformin is first-line therapy for type 2 diabetes.'))]);
  const mask = Float32Array.from(sentence.targets, (x) => (x >= 0 ? 1 : 0));
  const opt = new AdamW(model, { lr: 3e-3, weightDecay: 0, maxGradNorm: 1 });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { logp } = await model.forward(sentence, { training: true });
    const out = sftLoss(logp, mask, sentence.cuSeqlens, { agg: 'token-mean' });
    losses.push(out.loss);
    model.zeroGrad();
    await model.backward({ dlogp: out.dlogp });
    await opt.step();
  }
  return losses;
}

t.test('training steps in bf16 move the loss as in f32', async (t) => {
  const f32 = await train('f32', 25);
  const bf16 = await train('bf16', 25);
  // Same init: the first loss differs only by bf16 rounding of the products.
  t.ok(Math.abs(bf16[0] - f32[0]) < 0.01, `first loss ${bf16[0].toFixed(4)} vs ${f32[0].toFixed(4)}`);
  const last = (x: number[]) => x[x.length - 1];
  t.ok(
    last(bf16) < bf16[0] - 1,
    `bf16 loss falls by more than 1 nat: ${bf16[0].toFixed(3)} -> ${last(bf16).toFixed(3)}`,
  );
  // Loosely the f32 run: within 10% (the two runs' updates differ by bf16 rounding every step).
  t.ok(
    Math.abs(last(bf16) - last(f32)) <= 0.1 * last(f32),
    `last loss ${last(bf16).toFixed(3)} vs ${last(f32).toFixed(3)}`,
  );
});

t.test('cached decoding reads the bf16 copy: greedy tokens and log-probs follow the dtype', async (t) => {
  const model = Model.create(tinyConfig, { seed: 9, initStd: 0.3 });
  const promptIds = charTokenizer.encode('the heel bone');
  const run = async (dtype: 'f32' | 'bf16') => {
    setComputeDtype(model, dtype);
    const engine = createGenerationEngine(model, { tokenizer: charTokenizer });
    try {
      return (await engine.generate({ promptIds, params: { temperature: 0, maxNewTokens: 8 } })).samples[0];
    } finally {
      await engine.close();
    }
  };
  const f32 = await run('f32');
  const bf16 = await run('bf16');
  t.not(bf16.logprobs[0], f32.logprobs[0], 'unrounded weights: the first log-prob differs in bf16');
  t.ok(Math.abs(bf16.logprobs[0] - f32.logprobs[0]) < 0.05, 'by bf16 rounding only');
  roundWeights(model);
  const rf32 = await run('f32');
  const rbf16 = await run('bf16');
  t.same(rbf16.tokenIds, rf32.tokenIds, 'bf16-valued weights: the same greedy tokens');
  // The projections give the f32 bits here (the few-row kernel); what remains is the bf16 KV cache's
  // rounding of K and V (the cache follows the compute dtype; kv-cache-bf16.test.ts states the bound).
  const worst = Math.max(...rbf16.logprobs.map((v, i) => Math.abs(v - rf32.logprobs[i])));
  t.ok(worst > 0 && worst < 0.05, `log-probs within the bf16 cache's rounding (worst ${worst.toExponential(2)})`);
});

// The tower's linear layers read the bf16 copy too: two Qwen3-VL models whose tower projections differ
// only below bf16 precision give the same bits in bf16 (forward and every gradient), and differ in f32.
t.test('a Qwen3-VL tower computes in bf16 with the decoder', async (t) => {
  const dir = join(import.meta.dirname, '..', 'fixtures', 'hf', 'qwen3vl_tiny');
  const images = referenceBatch(dir);
  const towerLinear = /^model\.visual\..*\.(proj|qkv|linear_fc1|linear_fc2)\.weight$/;
  const [plain, rounded] = [await loadModel(dir), await loadModel(dir)];
  const names = rounded
    .parameters()
    .filter((p) => towerLinear.test(p.name))
    .map((p) => p.name);
  t.ok(names.length >= 4, `the tower's projections: ${names.length} tensors`);
  for (const name of names) rounded.setParameter(name, round(rounded.getParameter(name)));
  const step = async (m: Model, dtype: 'f32' | 'bf16') => {
    setComputeDtype(m, dtype);
    m.zeroGrad();
    const { logp } = await m.forward(images, { training: true });
    await m.backward({ dlogp: new Float32Array(logp.length).fill(-0.1) });
    const grads = m.parameters().flatMap((p) => [...m.getGradient(p.name)]);
    return { logp, grads: Float32Array.from(grads) };
  };
  const [a, b] = [await step(plain, 'bf16'), await step(rounded, 'bf16')];
  t.ok(sameBits(a.logp, b.logp), 'bf16: the same log-probs, bit for bit');
  t.ok(sameBits(a.grads, b.grads) && maxAbs(a.grads) > 0, 'bf16: the same gradients, bit for bit');
  const [c, d] = [await step(plain, 'f32'), await step(rounded, 'f32')];
  t.notOk(sameBits(c.logp, d.logp), 'f32: the rounding of the tower changes the log-probs');
  // Generation runs the tower itself (the cached prefill): seeded samples follow the same rule.
  const prompt = Array.from(images.tokens.subarray(images.cuSeqlens[0], images.cuSeqlens[1]));
  // The first sequence's two images: the batch's pixels are every image's patches back to back.
  const grids = Array.from(images.imageGrids!);
  const patchesOf = (i: number) => grids[3 * i] * grids[3 * i + 1] * grids[3 * i + 2];
  const allPatches = Array.from({ length: grids.length / 3 }, (_, i) => patchesOf(i)).reduce((a, b) => a + b);
  const perPatch = images.pixels!.length / allPatches;
  const firstTwo = [0, 1].map((i) => {
    const start = i === 0 ? 0 : patchesOf(0) * perPatch;
    const grid = grids.slice(3 * i, 3 * i + 3) as [number, number, number];
    return { pixels: images.pixels!.subarray(start, start + patchesOf(i) * perPatch), grid };
  });
  const sample = async (m: Model, dtype: 'f32' | 'bf16') => {
    setComputeDtype(m, dtype);
    const engine = new Qwen3GenerationEngine(m, { blockSize: 4 });
    try {
      const params = { temperature: 1, n: 2, seed: 3, maxNewTokens: 6, ignoreEos: true };
      const r = await engine.generate({ promptIds: prompt, images: firstTwo, params });
      return Float32Array.from(r.samples.flatMap((s) => s.logprobs));
    } finally {
      await engine.close();
    }
  };
  t.ok(sameBits(await sample(plain, 'bf16'), await sample(rounded, 'bf16')), 'generation in bf16: the same bits');
  t.notOk(sameBits(await sample(plain, 'f32'), await sample(rounded, 'f32')), 'generation in f32: not');
  t.ok(
    maxDiff(c.logp, a.logp) < 0.1,
    `bf16 is within bf16 rounding of f32 (${maxDiff(c.logp, a.logp).toExponential(2)})`,
  );
});

t.test('a bad dtype is refused', async (t) => {
  const model = Model.create(tinyConfig, { seed: 1 });
  t.throws(() => setComputeDtype(model, 'f16' as 'f32'), /setComputeDtype: dtype must be 'f32' or 'bf16', got 'f16'/);
});
