// Full sharding in a world of one process (the layout is its own single shard): training matches
// the plain model bit for bit (also with a tied head, experts, and a vision tower fed images), the
// whole weights are readable only while gathered, and misuse is refused with the reason. The
// multi-process behaviour is in test/distributed/full-shard.test.ts.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import { Model, packSequences } from '../../src/engine/model.js';
import { AdamW } from '../../src/engine/optimizer.js';
import { loadModel } from '../../src/model/load.js';
import { createRandomModel } from '../../src/model/presets.js';
import { fullShard, fullShardMemory, isFullShard, withWholeWeights } from '../../src/engine/full-shard.js';
import { bf16ToF32, f32ToBf16, setComputeDtype } from '../../src/engine/bf16.js';
import { referenceBatch } from '../helpers/image-batch.js';
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

// One AdamW step on `batch` with every token's log-prob pulled up: the units a model has (a tied
// head, a vision tower, experts) all get gradients, so the sharded step must gather and reduce them.
async function oneStep(m: Model, batch: Parameters<Model['forward']>[0]): Promise<number> {
  m.zeroGrad();
  const { logp } = await m.forward(batch, { training: true });
  await m.backward({ dlogp: new Float32Array(logp.length).fill(-0.1) });
  return (await new AdamW(m, { lr: 0.01, weightDecay: 0.1, maxGradNorm: 1 }).step()).gradNorm;
}

async function sameStep(t: Test, make: () => Promise<Model> | Model, batch: Parameters<Model['forward']>[0]) {
  const [plain, sharded] = [await make(), await make()];
  fullShard(sharded);
  const [a, b] = [await oneStep(plain, batch), await oneStep(sharded, batch)];
  t.ok(a > 0 && a === b, `the same gradient norm (${a})`);
  const whole = await withWholeWeights(sharded, () => weightsOf(sharded));
  t.ok(sameBits(whole, weightsOf(plain)), 'the same weights, bit for bit');
}

t.test('one process: a tied head, a vision tower and experts step as without sharding', async (t) => {
  const text = packSequences([
    [1, 5, 9, 13, 17, 21],
    [2, 4, 8, 16],
  ]);
  const tied = () => Model.create({ ...fsdpConfig, tieEmbeddings: true }, { seed: 4 });
  await t.test('tied embeddings', (t) => sameStep(t, tied, text));
  const moe = () => createRandomModel('tiny-moe', { vocabSize: 64, seed: 4 });
  await t.test('mixture of experts', (t) => sameStep(t, moe, text));
  const vl = join(import.meta.dirname, '..', 'fixtures', 'hf', 'qwen3vl_tiny');
  await t.test('Qwen3-VL with images', (t) => sameStep(t, () => loadModel(vl), referenceBatch(vl)));
});

// Fully sharded in bf16, units travel in bf16 and every op reads the rounded weights
// (qwen3_fsdp.cc); so the plain bf16 model given the rounded weights takes the same step, bit for
// bit, while the gathers carry half the bytes of the f32 ones.
t.test('one process, bf16 compute: units gathered in bf16, the step of the rounded plain model', async (t) => {
  const batch = packSequences([
    [1, 5, 9, 13, 17, 21],
    [2, 4, 8, 16],
  ]);
  const rounded = () => {
    const m = Model.create(fsdpConfig, { seed: 5 });
    for (const p of m.parameters()) m.setParameter(p.name, bf16ToF32(f32ToBf16(m.getParameter(p.name))));
    return m;
  };
  const [plain, sharded, sharded32] = [rounded(), rounded(), rounded()];
  fullShard(sharded);
  fullShard(sharded32);
  setComputeDtype(plain, 'bf16');
  setComputeDtype(sharded, 'bf16');
  const [a, b] = [await oneStep(plain, batch), await oneStep(sharded, batch)];
  t.ok(a > 0 && a === b, `the same gradient norm (${a})`);
  await oneStep(sharded32, batch);
  const [bytes16, bytes32] = [fullShardMemory(sharded).allgatherBytes, fullShardMemory(sharded32).allgatherBytes];
  t.ok(bytes32 > 0 && bytes16 * 2 === bytes32, `bf16 gathers carry half the bytes (${bytes16} of ${bytes32})`);
  const whole = await withWholeWeights(sharded, () => weightsOf(sharded));
  t.ok(sameBits(whole, bf16ToF32(f32ToBf16(weightsOf(plain)))), 'the same weights, as the gathers round them');
  t.notOk(sameBits(whole, weightsOf(plain)), 'which the f32 master weights are not (the step moved them)');
  await t.rejects(
    withWholeWeights(sharded, () => setComputeDtype(sharded, 'f32')),
    /release them first/,
    'the dtype does not change while the whole weights are gathered',
  );
});

// The tower's projections read the compute copy too: fully sharded, that is their unit's gathered bf16
// bits, which must be in place (and at the right offsets) when the tower runs, forward and backward.
t.test('one process, bf16 compute: a Qwen3-VL with images steps as the rounded plain model', async (t) => {
  const vl = join(import.meta.dirname, '..', 'fixtures', 'hf', 'qwen3vl_tiny');
  const rounded = async () => {
    const m = await loadModel(vl);
    for (const p of m.parameters()) m.setParameter(p.name, bf16ToF32(f32ToBf16(m.getParameter(p.name))));
    setComputeDtype(m, 'bf16');
    return m;
  };
  const [plain, sharded] = [await rounded(), await rounded()];
  fullShard(sharded);
  const [a, b] = [await oneStep(plain, referenceBatch(vl)), await oneStep(sharded, referenceBatch(vl))];
  t.ok(a > 0 && a === b, `the same gradient norm (${a})`);
});
