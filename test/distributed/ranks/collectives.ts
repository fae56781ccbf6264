// One rank of test/distributed/collectives.test.ts: the collectives, a data-parallel model's steps and a
// sharded checkpoint. Writes what it saw to OUT/rank-R.json and its final weights to OUT/rank-R.f32.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { world } from '../../../src/engine/world.js';
import { saveCheckpointAcross } from '../../../src/train/checkpoint-sharded.js';
import { freshModel, trainSteps } from './dp-steps.js';

const out = process.argv[2];
const w = world();
const text = new TextDecoder();

const allreduce = [...(await w.allreduceSum([w.rank + 1, 0.25, -w.rank]))];
const broadcast = text.decode(
  await w.broadcast(w.rank === w.size - 1 ? new TextEncoder().encode(`from rank ${w.rank}`) : undefined, w.size - 1),
);
const gathered = await w.allgatherJson({ rank: w.rank, payload: 'x'.repeat(1000 * w.rank) });
const fromRoot = await w.fromRoot(() => `decided by rank ${w.rank}`);
let fromRootError = '';
try {
  await w.fromRoot(() => {
    throw new Error(`rank ${w.rank} refuses`);
  });
} catch (e) {
  fromRootError = (e as Error).message;
}

const model = freshModel();
model.setDataParallel();
const shard = model.optimizerShard();
const gradNorms = await trainSteps(model, 2, w);
await saveCheckpointAcross(w, join(out, 'run'), model, { step: 2 });

const weights = model.parameters().map((p) => model.getParameter(p.name));
writeFileSync(join(out, `rank-${w.rank}.f32`), Buffer.concat(weights.map((x) => Buffer.from(x.buffer))));
writeFileSync(
  join(out, `rank-${w.rank}.json`),
  JSON.stringify({
    rank: w.rank,
    size: w.size,
    backend: w.backend,
    allreduce,
    broadcast,
    gathered: gathered.map((g) => [g.rank, g.payload.length]),
    fromRoot,
    fromRootError,
    shard: { rank: shard.rank, size: shard.size, parameters: shard.parameters.map((p) => p.name), numel: shard.numel },
    gradNorms,
  }),
);
