// Every numeric collective of the communicator (all-reduce, reduce, broadcast, all-gather and
// reduce-scatter of equal shards, in float32 and float64) under `mpirun -np 2` and `-np 4`, checked
// against the direct formula over the ranks' inputs. Without MPI support or mpirun these tests are
// skipped, saying why.
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { world } from '../../src/engine/world.js';
import { mpirun, mpiUnavailable } from '../helpers/mpirun.js';
import { skipIfMissing } from '../helpers/system-skip.js';
import { input, SHARD } from './ranks/collective-inputs.js';

const script = join(import.meta.dirname, 'ranks', 'collective-ops.ts');
const range = (n: number) => Array.from({ length: n }, (_, i) => i);
/** sum over ranks of input(rank, i), for i in [from, from + n). */
const sums = (size: number, from: number, n: number) =>
  range(n).map((i) => range(size).reduce((s, r) => s + input(r, from + i), 0));

t.test('a world of one: the equal-shard collectives return the input', async (t) => {
  const w = world();
  const x = Float32Array.of(1, 2.5, -3);
  t.same([...(await w.allgatherEqual(x))], [...x]);
  t.same([...(await w.reduceScatterSum(x))], [...x]);
  t.same([...(await w.reduceSum(x))], [...x]);
  t.type(await w.allreduceSum(x), Float32Array, 'a Float32Array is summed as float32');
});

const unavailable = mpiUnavailable();
for (const size of [2, 4]) {
  const skip = skipIfMissing(unavailable, process.env.MEDIX_NO_MPI === '1');
  t.test(`${size} ranks: each collective equals its formula`, skip, async (t) => {
    const out = mkdtempSync(join(tmpdir(), `medix-coll${size}-`));
    const run = await mpirun(size, script, [out]);
    t.equal(run.code, 0, `mpirun exits 0\n${run.output}`);
    if (run.code !== 0) return;
    const root = size - 1;
    for (const rank of range(size)) {
      const r = JSON.parse(readFileSync(join(out, `rank-${rank}.json`), 'utf8'));
      const own = range(SHARD).map((i) => input(rank, i));
      t.equal(r.size, size);
      const total = sums(size, 0, SHARD);
      t.same(r.allreduceF32, total, `rank ${rank}: all-reduce f32 = sum over ranks`);
      t.same(r.allreduceF64, total, `rank ${rank}: all-reduce f64 = sum over ranks`);
      t.same(r.reduceF32, rank === root ? total : own, `rank ${rank}: reduce f32 to rank ${root}`);
      t.same(r.reduceF64, rank === root ? total : own, `rank ${rank}: reduce f64 to rank ${root}`);
      t.same(
        r.broadcast,
        range(SHARD).map((i) => input(root, i)),
        `rank ${rank}: broadcast from rank ${root}`,
      );
      const gathered = range(size).flatMap((q) => range(SHARD).map((i) => input(q, i)));
      t.same(r.allgatherF32, gathered, `rank ${rank}: all-gather f32 = shards in rank order`);
      t.same(r.allgatherF64, gathered, `rank ${rank}: all-gather f64 = shards in rank order`);
      const mine = sums(size, rank * SHARD, SHARD);
      t.same(r.reduceScatterF32, mine, `rank ${rank}: reduce-scatter f32 = sum of shard ${rank}`);
      t.same(r.reduceScatterF64, mine, `rank ${rank}: reduce-scatter f64 = sum of shard ${rank}`);
    }
  });
}
