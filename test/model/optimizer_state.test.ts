// Exact resume needs the optimizer's state: training 4 steps equals training 2, copying parameters
// and AdamW state into a fresh model, and training 2 more, bit for bit.
import t from 'tap';

import { Model, packSequences, type Qwen3Config } from '../../src/engine/model.js';
import { AdamW } from '../../src/engine/optimizer.js';
import { sftLoss } from '../../src/rl/sft-loss.js';

const config: Qwen3Config = {
  vocabSize: 64,
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
const batch = packSequences([
  [1, 5, 9, 13, 2],
  [7, 3, 3, 8],
]);
const mask = Float32Array.from(batch.targets, (x) => (x >= 0 ? 1 : 0));

async function train(model: Model, steps: number): Promise<void> {
  const opt = new AdamW(model, { lr: 1e-2, weightDecay: 0.01, maxGradNorm: 1 });
  for (let s = 0; s < steps; s++) {
    const { logp } = await model.forward(batch, { training: true });
    model.zeroGrad();
    await model.backward({ dlogp: sftLoss(logp, mask, batch.cuSeqlens, { agg: 'token-mean' }).dlogp });
    await opt.step();
  }
}

t.test('parameters + optimizer state restore training exactly', async (t) => {
  const straight = Model.create(config, { seed: 3 });
  await train(straight, 4);

  const first = Model.create(config, { seed: 3 });
  t.equal(first.getOptimizerState().step, 0);
  t.ok(
    first.getOptimizerState().m.every((x) => x === 0),
    'moments are zero before the first step',
  );
  await train(first, 2);
  const resumed = Model.create(config, { seed: 99 });
  for (const p of first.parameters()) resumed.setParameter(p.name, first.getParameter(p.name));
  resumed.setOptimizerState(first.getOptimizerState());
  t.equal(resumed.getOptimizerState().step, 2);
  await train(resumed, 2);

  for (const p of straight.parameters())
    t.same(resumed.getParameter(p.name), straight.getParameter(p.name), `${p.name} bit-identical`);
  t.same(resumed.getOptimizerState(), straight.getOptimizerState(), 'moments and step bit-identical');
});

t.test('bad optimizer state is a clear error', async (t) => {
  const model = Model.create(config, { seed: 1 });
  const n = model.numParameters;
  t.throws(() => model.setOptimizerState({ step: 1, m: new Float32Array(n - 1), v: new Float32Array(n) }), /state\.m/);
  t.throws(() => model.setOptimizerState({ step: -1, m: new Float32Array(n), v: new Float32Array(n) }), /step/);
  t.throws(
    () => model.setOptimizerState({ step: 1, m: new Float32Array(n), v: new Float32Array(n).fill(NaN) }),
    /non-finite/,
  );
});
