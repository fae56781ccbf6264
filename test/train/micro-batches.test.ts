// Micro-batches under full sharding: a rank with fewer samples than rank 0 pads with empty passes
// up to rank 0's count, and an empty pass leaves every gradient at zero (a fully sharded model in
// a world of one process; a stand-in world of two ranks for the counts).
import t from 'tap';
import { fullShard } from '../../src/engine/full-shard.js';
import { Model } from '../../src/engine/model.js';
import { AdamW } from '../../src/engine/optimizer.js';
import type { World } from '../../src/engine/world.js';
import { emptyPass, microBatches } from '../../src/train/micro-batches.js';
import { config } from '../distributed/ranks/dp-steps.js';

const twoRanks = { size: 2 } as World;

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

t.test('an empty pass leaves the gradients zero', async (t) => {
  const model = Model.create(config, { seed: 1 });
  fullShard(model);
  model.zeroGrad();
  await emptyPass(model, true);
  await emptyPass(model, false);
  const step = await new AdamW(model, { lr: 0.1 }).step();
  t.equal(step.gradNorm, 0, 'global gradient norm 0 after two empty passes');
});
