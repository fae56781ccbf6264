// One rank of test/distributed/full-shard.test.ts: a fully sharded model trains a few steps on its
// share of the batch, and so does a data-parallel model with the optimizer sharded by tensor (the
// lighter mode), and a fully sharded model computing in bf16 (its units gathered in bf16); writes the
// gradient norms and memory to OUT/rank-R.json and the final weights to OUT/rank-R.f32, OUT/rank-R-dp.f32
// and OUT/rank-R-bf16.f32 (the gathered, bf16-rounded weights).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { world } from '../../../src/engine/world.js';
import { fullShard, fullShardMemory, probeFullShardMemory, withWholeWeights } from '../../../src/engine/full-shard.js';
import { setComputeDtype } from '../../../src/engine/bf16.js';
import { Model } from '../../../src/engine/model.js';
import { trainSteps } from './dp-steps.js';
import { FSDP_STEPS, fsdpConfig, noDecay } from './full-shard-model.js';

const out = process.argv[2];
const w = world();
const model = Model.create(fsdpConfig, { seed: 7 });
fullShard(model);
probeFullShardMemory(model);
const gradNorms = await trainSteps(model, FSDP_STEPS, w, noDecay);
const afterSteps = fullShardMemory(model);
const weights = await withWholeWeights(model, () => model.parameters().map((p) => model.getParameter(p.name)));
const released = fullShardMemory(model);
writeFileSync(join(out, `rank-${w.rank}.f32`), Buffer.concat(weights.map((x) => Buffer.from(x.buffer))));

const dp = Model.create(fsdpConfig, { seed: 7 });
dp.setDataParallel();
await trainSteps(dp, FSDP_STEPS, w, noDecay);
const dpWeights = dp.parameters().map((p) => Buffer.from(dp.getParameter(p.name).buffer));
writeFileSync(join(out, `rank-${w.rank}-dp.f32`), Buffer.concat(dpWeights));

const bf = Model.create(fsdpConfig, { seed: 7 });
fullShard(bf);
setComputeDtype(bf, 'bf16');
const bf16GradNorms = await trainSteps(bf, FSDP_STEPS, w, noDecay);
const bf16Memory = fullShardMemory(bf);
const bfWeights = await withWholeWeights(bf, () =>
  bf.parameters().map((p) => Buffer.from(bf.getParameter(p.name).buffer)),
);
writeFileSync(join(out, `rank-${w.rank}-bf16.f32`), Buffer.concat(bfWeights));
const seen = { rank: w.rank, size: w.size, gradNorms, afterSteps, released, bf16GradNorms, bf16Memory };
writeFileSync(join(out, `rank-${w.rank}.json`), JSON.stringify(seen));
