// One rank of test/distributed/moe_train.test.ts: the MoE updates of moe-steps.ts as a data-parallel
// rank, then its final weights to OUT/rank-R.f32 and its metrics to OUT/rank-R.json.
// Usage: moe-train.ts OUT
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { world } from '../../../src/engine/world.js';
import { freshMoeModel, moeSteps } from './moe-steps.js';

const out = process.argv[2];
const w = world();
const model = freshMoeModel();
model.setDataParallel();
const metrics = await moeSteps(model, w);
const weights = model.parameters().map((p) => model.getParameter(p.name));
writeFileSync(join(out, `rank-${w.rank}.f32`), Buffer.concat(weights.map((x) => Buffer.from(x.buffer))));
writeFileSync(join(out, `rank-${w.rank}.json`), JSON.stringify({ size: w.size, metrics }));
