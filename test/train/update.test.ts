// The update step: packing puts each response log-prob where the model predicts it, micro-batch
// accumulation gives the mini-batch's gradient, the first PPO pass is on-policy (ratio 1, nothing
// clipped), advantages push log-probs the right way, and the SFT update learns the responses.
import t from 'tap';
import { Model, type Qwen3Config } from '../../src/engine/model.js';
import { AdamW } from '../../src/engine/optimizer.js';
import { packExperience, scatterResponse, type Experience } from '../../src/train/experience.js';
import { computeLogprobs, policyUpdate, sftUpdate, type UpdateOptions } from '../../src/train/update.js';

const config: Qwen3Config = {
  vocabSize: 40,
  hiddenSize: 16,
  intermediateSize: 32,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 8,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: false,
};

function experiences(): Experience[] {
  return [
    { promptIds: [1, 2, 3], responseIds: [7, 8, 9, 10], advantages: new Float32Array(4).fill(1.5) },
    { promptIds: [1, 2, 3], responseIds: [11, 12], advantages: new Float32Array(2).fill(-1.5) },
    { promptIds: [4, 5], responseIds: [20, 21, 22], advantages: new Float32Array(3).fill(0.5) },
    { promptIds: [4, 5], responseIds: [23], advantages: new Float32Array(1).fill(-0.5) },
  ];
}

const ppo = { kind: 'ppo' as const, agg: 'token-mean' as const, clipLow: 0.2, clipHigh: 0.28 };

t.test('packing: response log-probs sit where the model predicts the response tokens', async (t) => {
  const exps = experiences();
  const p = packExperience(exps);
  t.same([...p.batch.cuSeqlens], [0, 7, 12, 17, 20]);
  for (const [s, e] of exps.entries())
    for (let j = 0; j < e.responseIds.length; j++) {
      t.equal(p.batch.targets[p.starts[s] + j], e.responseIds[j], `sample ${s} token ${j} is the target there`);
      t.equal(p.mask[p.starts[s] + j], 1);
    }
  t.equal(
    p.mask.reduce((a, b) => a + b, 0),
    10,
    'only response tokens are masked in',
  );
  t.throws(() => scatterResponse(p, exps, () => [1]), /1 values for 4 response tokens/);
  t.throws(
    () => packExperience([{ promptIds: [], responseIds: [1], advantages: new Float32Array(1).fill(0) }]),
    /prompt is empty/,
  );
});

t.test('micro-batch accumulation equals one big batch', async (t) => {
  const run = async (micro: number) => {
    const model = Model.create(config, { seed: 5 });
    const exps = experiences();
    const old = await computeLogprobs(model, exps, 2);
    exps.forEach((e, i) => (e.oldLogp = old[i]));
    const o: UpdateOptions = { miniBatch: 4, microBatch: micro, epochs: 1, temperature: 1, lr: () => 1e-2 };
    const m = await policyUpdate(model, new AdamW(model, { lr: 1e-2, weightDecay: 0 }), exps, o, ppo);
    return { m, w: model.getParameter('model.layers.0.mlp.up_proj.weight') };
  };
  const a = await run(4);
  const b = await run(1);
  t.ok(Math.abs(a.m.loss - b.m.loss) < 1e-6, `loss ${a.m.loss} vs ${b.m.loss}`);
  t.ok(
    Math.abs(a.m.grad_norm - b.m.grad_norm) < 1e-5 * a.m.grad_norm,
    `grad norm ${a.m.grad_norm} vs ${b.m.grad_norm}`,
  );
  let maxDiff = 0;
  for (let i = 0; i < a.w.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a.w[i] - b.w[i]));
  t.ok(maxDiff < 1e-6, `parameters after the step agree (max diff ${maxDiff})`);
});

t.test('on-policy first pass, and advantages move log-probs the right way', async (t) => {
  const model = Model.create(config, { seed: 9 });
  const exps = experiences();
  const before = await computeLogprobs(model, exps, 4);
  exps.forEach((e, i) => (e.oldLogp = before[i]));
  const o: UpdateOptions = { miniBatch: 4, microBatch: 2, epochs: 1, temperature: 1, lr: () => 3e-2 };
  const m = await policyUpdate(model, new AdamW(model, { lr: 3e-2, weightDecay: 0 }), exps, o, ppo);
  t.ok(Math.abs(m.ppo_kl) < 1e-6, `ppo_kl ${m.ppo_kl} is 0 on policy`);
  t.equal(m.pg_clipfrac_higher, 0, 'nothing clipped on policy');
  t.ok(m.entropy > 0, `entropy reported (${m.entropy.toFixed(3)})`);
  t.equal(m.optimizer_steps, 1);
  const after = await computeLogprobs(model, exps, 4);
  const sum = (x: Float32Array) => x.reduce((a, b) => a + b, 0);
  exps.forEach((e, i) => {
    const delta = sum(after[i]) - sum(before[i]);
    t.ok(
      Math.sign(delta) === Math.sign(e.advantages![0]),
      `sample ${i}: advantage ${e.advantages![0]}, log-prob change ${delta.toFixed(4)}`,
    );
  });
  await t.rejects(
    policyUpdate(
      model,
      new AdamW(model, { lr: 1 }),
      [{ promptIds: [1], responseIds: [2], advantages: new Float32Array(1).fill(1) }],
      o,
      ppo,
    ),
    /oldLogp is missing/,
  );
  await t.rejects(
    policyUpdate(model, new AdamW(model, { lr: 1 }), exps, o, { ...ppo, kl: 'low_var_kl', klCoef: 0.01 }),
    /refLogp is missing/,
  );
});

t.test('SFT update learns the responses', async (t) => {
  const model = Model.create(config, { seed: 2 });
  const exps = experiences();
  const opt = new AdamW(model, { lr: 1e-2, weightDecay: 0 });
  const o: UpdateOptions = { miniBatch: 2, microBatch: 1, epochs: 20, temperature: 1, lr: () => 1e-2 };
  const first = await sftUpdate(model, opt, exps, { ...o, epochs: 1 });
  const later = await sftUpdate(model, opt, exps, o);
  t.equal(later.optimizer_steps, 40, 'two mini-batches per epoch');
  t.ok(later.loss < first.loss * 0.5, `loss ${first.loss.toFixed(3)} -> ${later.loss.toFixed(3)}`);
});
