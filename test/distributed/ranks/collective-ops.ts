// One rank of test/distributed/collective-ops.test.ts: every numeric collective once, on inputs that
// depend on the rank (input(rank, i)), written to OUT/rank-R.json for the test to check.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { world } from '../../../src/engine/world.js';
import { input, SHARD } from './collective-inputs.js';

const out = process.argv[2];
const w = world();
const f32 = (n: number) => Float32Array.from({ length: n }, (_, i) => input(w.rank, i));
const f64 = (n: number) => Float64Array.from({ length: n }, (_, i) => input(w.rank, i));
const root = w.size - 1;

const results = {
  rank: w.rank,
  size: w.size,
  allreduceF32: [...(await w.allreduceSum(f32(SHARD)))],
  allreduceF64: [...(await w.allreduceSum(f64(SHARD)))],
  reduceF32: [...(await w.reduceSum(f32(SHARD), root))],
  reduceF64: [...(await w.reduceSum(f64(SHARD), root))],
  broadcast: [...new Float32Array((await w.broadcast(new Uint8Array(f32(SHARD).buffer), root)).slice().buffer)],
  allgatherF32: [...(await w.allgatherEqual(f32(SHARD)))],
  allgatherF64: [...(await w.allgatherEqual(f64(SHARD)))],
  reduceScatterF32: [...(await w.reduceScatterSum(f32(SHARD * w.size)))],
  reduceScatterF64: [...(await w.reduceScatterSum(f64(SHARD * w.size)))],
};
writeFileSync(join(out, `rank-${w.rank}.json`), JSON.stringify(results));
