// The whole decoder: finite-difference gradients of every parameter tensor, gradient
// checkpointing, determinism, the activation plan, and errors on bad input.
import t from 'tap';

import { Model, packSequences, type Qwen3Config } from '../../src/engine/model.js';
import { dot, randInt, randn, rng } from '../helpers/numeric.js';

const tiny: Qwen3Config = {
  vocabSize: 50,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: false,
};

function batchOf(seed: number, lengths: number[], vocab: number) {
  const r = rng(seed);
  return packSequences(lengths.map((n) => Array.from(randInt(n, r, 0, vocab))));
}

t.test('finite differences agree with backward for every parameter tensor', async (t) => {
  for (const tie of [false, true]) {
    // A large init (0.5) makes every path through the model matter; float32 forward passes limit
    // the finite-difference accuracy to ~ eps_f32 * |L| / h ≈ 1e-7 * 10 / 1e-2 = 1e-4 absolute.
    const model = Model.create({ ...tiny, tieEmbeddings: tie }, { seed: 3, initStd: 0.5 });
    const batch = batchOf(5, [6, 1, 9], tiny.vocabSize);
    const probe = randn(batch.tokens.length, rng(8));
    const loss = async () => dot((await model.forward(batch)).logp, probe);
    await model.forward(batch, { training: true });
    model.zeroGrad();
    await model.backward({ dlogp: probe });

    for (const p of model.parameters()) {
      const param = model.getParameter(p.name);
      const grad = model.getGradient(p.name);
      // Central differences by hand: the model's forward is async, test/helpers' gradcheck is not.
      const samples = Math.min(6, p.numel);
      const r = rng(p.numel);
      let worst = 0;
      for (let k = 0; k < samples; k++) {
        const i = Math.floor(r() * p.numel);
        const orig = param[i];
        const h = 1e-2;
        param[i] = orig + h;
        model.setParameter(p.name, param);
        const up = await loss();
        param[i] = orig - h;
        model.setParameter(p.name, param);
        const down = await loss();
        param[i] = orig;
        model.setParameter(p.name, param);
        const fd = (up - down) / (Math.fround(orig + h) - Math.fround(orig - h));
        worst = Math.max(worst, Math.abs(fd - grad[i]) / (2e-3 + 2e-2 * Math.abs(grad[i])));
      }
      t.ok(worst <= 1, `${tie ? 'tied' : 'untied'} ${p.name}: worst ${worst.toFixed(3)} x tolerance`);
    }
  }
});

t.test('the head runs only on rows with a target: those rows match a batch where every row has one', async (t) => {
  // Every row of `full` has a target (the last token of each sequence predicts token 0); `sparse` keeps
  // the targets of a few rows only, as an RL batch keeps its response rows. The kept rows' log-probs,
  // entropies and all gradients must be the same; the others read 0.
  const model = Model.create(tiny, { seed: 4, initStd: 0.4 });
  const full = batchOf(12, [9, 5, 11], tiny.vocabSize);
  full.targets.forEach((v, i) => (full.targets[i] = Math.max(v, 0)));
  const kept = [2, 3, 4, 10, 15, 16, 24];
  const sparse = { ...full, targets: full.targets.map((v, i) => (kept.includes(i) ? v : -1)) };
  const probe = randn(full.tokens.length, rng(6)).map((v, i) => (kept.includes(i) ? v : 0));
  const dentropy = randn(full.tokens.length, rng(7)).map((v, i) => (kept.includes(i) ? v : 0));
  const run = async (batch: typeof full) => {
    const out = await model.forward(batch, { training: true, entropy: true });
    model.zeroGrad();
    await model.backward({ dlogp: probe, dentropy });
    return { ...out, grads: model.parameters().map((p) => model.getGradient(p.name)) };
  };
  const [a, b] = [await run(full), await run(sparse)];
  const close = (x: ArrayLike<number>, y: ArrayLike<number>) =>
    Array.from(x).every((v, i) => Math.abs(v - y[i]) <= 1e-5 * (1 + Math.abs(v)));
  t.ok(
    close(
      kept.map((i) => a.logp[i]),
      kept.map((i) => b.logp[i]),
    ),
    'kept rows: same log-probs',
  );
  t.ok(
    close(
      kept.map((i) => a.entropy![i]),
      kept.map((i) => b.entropy![i]),
    ),
    'kept rows: same entropies',
  );
  const others = Array.from(b.logp.keys()).filter((i) => !kept.includes(i));
  t.ok(
    others.every((i) => b.logp[i] === 0 && b.entropy![i] === 0),
    'rows without a target read 0',
  );
  t.ok(
    others.some((i) => a.entropy![i] !== 0),
    'the full batch has non-zero entropies there',
  );
  a.grads.forEach((g, i) => t.ok(close(g, b.grads[i]), `${model.parameters()[i].name}: same gradient`));
});

t.test('gradient checkpointing gives identical gradients', async (t) => {
  const batch = batchOf(11, [17, 4, 30], tiny.vocabSize);
  const probe = randn(batch.tokens.length, rng(2));
  const dentropy = randn(batch.tokens.length, rng(3));
  const grads = async (recompute: boolean) => {
    const model = Model.create(tiny, { seed: 1, initStd: 0.3, recompute });
    await model.forward(batch, { training: true, entropy: true });
    model.zeroGrad();
    await model.backward({ dlogp: probe, dentropy });
    return model.parameters().map((p) => model.getGradient(p.name));
  };
  const plain = await grads(false);
  const recomputed = await grads(true);
  plain.forEach((g, i) => t.same(recomputed[i], g, `tensor ${i} bit-identical`));
  const model = Model.create(tiny, { recompute: false });
  const full = model.activationPlan(4096);
  model.setRecompute(true);
  const ckpt = model.activationPlan(4096);
  t.ok(ckpt.totalBytes < full.totalBytes, `recompute plans less memory (${ckpt.totalBytes} < ${full.totalBytes})`);
  t.equal(full.totalBytes - ckpt.totalBytes, full.perLayerBytes * (tiny.numLayers - 1), 'saves all but one layer');
});

t.test('same seed and inputs give bit-identical results', async (t) => {
  const batch = batchOf(4, [12, 7], tiny.vocabSize);
  const run = async () => {
    const model = Model.create(tiny, { seed: 42, initStd: 0.2 });
    const out = await model.forward(batch, { training: true, entropy: true });
    model.zeroGrad();
    await model.backward({ dlogp: new Float32Array(batch.tokens.length).fill(1) });
    return [out.logp, out.entropy!, model.getGradient('model.layers.1.mlp.down_proj.weight')];
  };
  t.same(await run(), await run());
  const a = Model.create(tiny, { seed: 1 }).getParameter('model.embed_tokens.weight');
  const b = Model.create(tiny, { seed: 2 }).getParameter('model.embed_tokens.weight');
  t.notSame(a, b, 'different seeds give different weights');
});

t.test('packed sequences do not see each other', async (t) => {
  const model = Model.create(tiny, { seed: 9, initStd: 0.3 });
  const a = [1, 2, 3, 4, 5];
  const alone = await model.forward(packSequences([a]));
  const packed = await model.forward(packSequences([a, [7, 8, 9]]));
  t.same(packed.logp.subarray(0, 5), alone.logp, 'first sequence unchanged by a second one');
});

t.test('Hugging Face parameter names and shapes', async (t) => {
  const model = Model.create(tiny);
  const names = model.parameters().map((p) => p.name);
  t.equal(names[0], 'model.embed_tokens.weight');
  t.ok(names.includes('model.layers.1.self_attn.k_norm.weight'));
  t.equal(names.at(-1), 'lm_head.weight');
  const q = model.parameters().find((p) => p.name === 'model.layers.0.self_attn.q_proj.weight')!;
  t.same(q.shape, [tiny.numHeads * tiny.headDim, tiny.hiddenSize]);
  const tied = Model.create({ ...tiny, tieEmbeddings: true });
  t.notOk(
    tied.parameters().some((p) => p.name === 'lm_head.weight'),
    'tied models have no lm_head',
  );
});

t.test('bad input is a clear JS error', async (t) => {
  const model = Model.create(tiny);
  const good = batchOf(1, [4, 3], tiny.vocabSize);
  await t.rejects(
    model.forward({ ...good, tokens: new Int32Array([1, 2, 3, 99, 1, 2, 3]) }),
    /tokens\[3\] = 99 is out of range/,
  );
  await t.rejects(
    async () => model.forward({ ...good, tokens: new Float32Array(7) as unknown as Int32Array }),
    /tokens must be a Int32Array/,
  );
  await t.rejects(
    async () => model.forward({ ...good, cuSeqlens: new Int32Array([0, 4, 6]) }),
    /must end at the token count 7/,
  );
  await t.rejects(async () => model.forward({ ...good, targets: new Int32Array(7).fill(-2) }), /targets\[0\] = -2/);
  await t.rejects(async () => model.forward({ ...good, targets: new Int32Array(3) }), /targets must have length 7/);
  await t.rejects(async () => model.forward(good, { temperature: 0 }), /temperature/);
  await t.rejects(model.backward({ dlogp: new Float32Array(7) }), /call forward with training: true first/);
  await model.forward(good, { training: true });
  await t.rejects(model.backward({ dlogp: new Float32Array(3) }), /dlogp has 3 entries but the last forward had 7/);
  await t.rejects(
    async () => model.backward({ dlogp: new Float32Array(7).fill(NaN) }),
    /non-finite value .* at index 0/,
  );
  t.throws(() => model.setParameter('model.norm.weight', new Float32Array(3)), /length 16/);
  t.throws(() => model.setParameter('model.norm.weight', new Float32Array(16).fill(Infinity)), /non-finite/);
  t.throws(() => model.getParameter('model.nope'), /unknown parameter 'model.nope'/);
  t.throws(() => Model.create({ ...tiny, numKvHeads: 3 }), /multiple of num_key_value_heads/);
  t.throws(() => Model.create({ ...tiny, headDim: 7 }), /must be an integer in|even/);
  // The busy flag is cleared on the main thread when the work completes, so both checks run
  // before yielding to the event loop.
  const pending = model.forward(good);
  t.throws(() => model.getParameter('model.norm.weight'), /busy/);
  const second = model.forward(good);
  await t.rejects(second, /busy/);
  await pending;
});
