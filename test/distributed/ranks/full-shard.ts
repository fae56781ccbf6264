// One rank of test/distributed/full-shard.test.ts: a fully sharded model trains a few steps on its
// share of the batch, and so does a data-parallel model with the optimizer sharded by tensor (the
// lighter mode); writes the gradient norms and memory to OUT/rank-R.json and the final weights of
// both to OUT/rank-R.f32 and OUT/rank-R-dp.f32.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { world } from '../../../src/engine/world.js';
import { fullShard, fullShardMemory, probeFullShardMemory, withWholeWeights } from '../../../src/engine/full-shard.js';
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
const seen = { rank: w.rank, size: w.size, gradNorms, afterSteps, released };
writeFileSync(join(out, `rank-${w.rank}.json`), JSON.stringify(seen));
