// One rank of test/distributed/moe_train.test.ts: the MoE updates of moe-steps.ts as a data-parallel
// rank, or fully sharded in micro-batches of one (`full-shard`: ranks with fewer sequences run empty
// passes), then its final weights to OUT/rank-R.f32 and its metrics to OUT/rank-R.json.
// Usage: moe-train.ts OUT [full-shard]
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fullShard, withWholeWeights } from '../../../src/engine/full-shard.js';
import { world } from '../../../src/engine/world.js';
import { freshMoeModel, moeSteps } from './moe-steps.js';

const [out, mode] = process.argv.slice(2);
const w = world();
const model = freshMoeModel();
const sharded = mode === 'full-shard';
if (sharded) fullShard(model);
else model.setDataParallel();
const metrics = await moeSteps(model, w, sharded ? 1 : 2);
const read = () => model.parameters().map((p) => model.getParameter(p.name));
const weights = sharded ? await withWholeWeights(model, read) : read();
writeFileSync(join(out, `rank-${w.rank}.f32`), Buffer.concat(weights.map((x) => Buffer.from(x.buffer))));
writeFileSync(join(out, `rank-${w.rank}.json`), JSON.stringify({ size: w.size, metrics }));
