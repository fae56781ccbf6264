// Full sharding in a world of one process (the layout is its own single shard): training matches
// the plain model bit for bit, the whole weights are readable only while gathered, and misuse is
// refused with the reason. The multi-process behaviour is in test/distributed/full-shard.test.ts.
import t from 'tap';
import { Model } from '../../src/engine/model.js';
import { fullShard, fullShardMemory, isFullShard, withWholeWeights } from '../../src/engine/full-shard.js';
import { sameBits } from '../helpers/numeric.js';
import { trainSteps } from '../distributed/ranks/dp-steps.js';
import { fsdpConfig, noDecay } from '../distributed/ranks/full-shard-model.js';

const weightsOf = (m: Model) => new Float32Array(m.parameters().flatMap((p) => [...m.getParameter(p.name)]));

t.test('one process: fully sharded training equals plain training bit for bit', async (t) => {
  const plain = Model.create(fsdpConfig, { seed: 3 });
  const sharded = Model.create(fsdpConfig, { seed: 3 });
  fullShard(sharded);
  t.ok(isFullShard(sharded) && !isFullShard(plain));
  const [a, b] = [await trainSteps(plain, 2, undefined, noDecay), await trainSteps(sharded, 2, undefined, noDecay)];
  t.same(b, a, 'the same gradient norms');
  t.ok(a[0] > 0, 'real gradients');
  const whole = await withWholeWeights(sharded, () => weightsOf(sharded));
  t.ok(sameBits(whole, weightsOf(plain)), 'the same weights');
  t.equal(fullShardMemory(sharded).sliceBytes, 16 * plain.numParameters, 'one rank holds every shard');
});

t.test('a fully sharded model refuses what needs whole weights or gradients', async (t) => {
  const m = Model.create(fsdpConfig, { seed: 3 });
  fullShard(m);
  const name = m.parameters()[1].name;
  t.throws(() => m.getParameter(name), /fully sharded; gather its weights first/);
  t.throws(() => m.getGradient(name), /fully sharded/);
  t.throws(() => fullShard(m), /already data parallel or fully sharded/);
  // setParameter writes this rank's shard: visible once gathered.
  const x = Float32Array.from({ length: m.parameters()[1].numel }, (_, i) => i / 7);
  m.setParameter(name, x);
  t.ok(sameBits(await withWholeWeights(m, () => m.getParameter(name)), x), 'a set tensor reads back once gathered');
  t.throws(() => m.getParameter(name), /gather its weights first/, 'given back after withWholeWeights');
});

t.test('full sharding needs a model without optimizer state', async (t) => {
  const m = Model.create(fsdpConfig, { seed: 3 });
  await trainSteps(m, 1);
  t.throws(() => fullShard(m), /optimizer state already exists/);
});
