// Micro-batches under full sharding: a rank with fewer samples than rank 0 pads with empty passes
// up to rank 0's count, and an empty pass leaves every gradient at zero (a fully sharded model in
// a world of one process; a stand-in world of two ranks for the counts), also for a mixture of experts
// and a Qwen3-VL model.
import t from 'tap';
import { join } from 'node:path';
import { fullShard } from '../../src/engine/full-shard.js';
import { Model, packSequences } from '../../src/engine/model.js';
import { AdamW } from '../../src/engine/optimizer.js';
import type { World } from '../../src/engine/world.js';
import { loadModel } from '../../src/model/load.js';
import { createRandomModel } from '../../src/model/presets.js';
import { emptyPass, microBatches } from '../../src/train/micro-batches.js';
import { RoutingTally } from '../../src/train/moe-stats.js';
import { config } from '../distributed/ranks/dp-steps.js';

const twoRanks = { size: 2 } as World;
const vlTiny = join(import.meta.dirname, '..', 'fixtures', 'hf', 'qwen3vl_tiny');

t.test('a rank with fewer samples pads to rank 0 count of micro-batches', async (t) => {
  const model = Model.create(config, { seed: 1 });
  t.same(microBatches(model, ['a', 'b'], 1, 5, twoRanks), [['a'], ['b']], 'not fully sharded: no padding');
  fullShard(model);
  // 5 samples over 2 ranks: rank 0 takes 3, rank 1 these 2.
  t.same(microBatches(model, ['b', 'd'], 1, 5, twoRanks), [['b'], ['d'], null]);
  t.same(microBatches(model, ['b', 'd'], 2, 5, twoRanks), [['b', 'd'], null], 'rank 0 makes 2: one of 2, one of 1');
  t.same(microBatches(model, [], 2, 1, twoRanks), [null], 'no sample of its own: one empty pass');
  t.same(microBatches(model, ['a'], 1, 1), [['a']], 'one process: as split');
});

// The gradient norm of one optimizer step after two empty passes (one training, one not).
async function emptyStepNorm(model: Model): Promise<number> {
  fullShard(model);
  model.zeroGrad();
  await emptyPass(model, true);
  await emptyPass(model, false);
  return (await new AdamW(model, { lr: 0.1 }).step()).gradNorm;
}

t.test('an empty pass leaves the gradients zero', async (t) => {
  t.equal(await emptyStepNorm(Model.create(config, { seed: 1 })), 0, 'global gradient norm 0 after two empty passes');
  // A mixture of experts with the load-balancing loss on (as the update leaves it after a real pass):
  // the dummy token's routing would get its gradient, were the weight not 0 for the empty pass.
  const moe = createRandomModel('tiny-moe', { vocabSize: 64, seed: 4 });
  moe.setAuxLossWeight(0.5);
  t.equal(await emptyStepNorm(moe), 0, 'a mixture of experts: norm 0 with the aux loss weight set before');
  t.equal(await emptyStepNorm(await loadModel(vlTiny)), 0, 'Qwen3-VL (its tower reduced, zeros): norm 0');
});

// A mixture of experts' real pass after empty ones still gets its load-balancing gradient: the empty
// pass zeroes the weight for its own backward only (RoutingTally sets it before every real one).
t.test('the aux loss weight is set again by the pass after an empty one', async (t) => {
  const moe = createRandomModel('tiny-moe', { vocabSize: 64, seed: 4 });
  fullShard(moe);
  await emptyPass(moe, true);
  const tally = new RoutingTally(moe);
  const batch = packSequences([[1, 5, 9, 13]]);
  moe.zeroGrad();
  await moe.forward(batch, { training: true });
  t.ok(tally.afterForward(1, 4) > 0, 'the real pass has an aux term');
  await moe.backward({ dlogp: new Float32Array(4) });
  const norm = (await new AdamW(moe, { lr: 0.1 }).step()).gradNorm;
  t.ok(norm > 0, `zero d/dlogp: its gradient is the aux loss's alone (${norm})`);
});
