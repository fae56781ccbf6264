// `medix selftest --dist` as a user runs it: alone and under `mpirun -np 2`, every collective in f32
// and f64 (and the bf16 gather) on the host engine passes on every rank, NCCL says why it did not run (no GPU here), and the
// exit code carries the verdict. Without MPI support or mpirun the two-rank test is skipped, saying why.
import t, { type Test } from 'tap';
import { join } from 'node:path';
import type { DistSelftest } from '../../src/engine/dist-selftest.js';
import { medix } from '../cli/run-medix.js';
import { mpirun, mpiUnavailable } from '../helpers/mpirun.js';
import { skipIfMissing } from '../helpers/system-skip.js';

const cli = join(import.meta.dirname, '../../src/cli/medix.ts');
const COLLECTIVES = [
  'allreduce_sum',
  'reduce_sum',
  'broadcast',
  'allgather_equal',
  'start_gather',
  'reduce_scatter_sum',
];
const reports = (output: string): DistSelftest[] =>
  output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as DistSelftest)
    .sort((a, b) => a.rank - b.rank);

function checkReport(t: Test, r: DistSelftest, size: number, engine: string): void {
  t.match(r, { size, host: { engine, ran: true }, failedAllRanks: 0, enginesDiffer: 0 }, `rank ${r.rank}`);
  const names = r.host.checks.map((c) => `${c.collective} ${c.dtype}`).sort();
  t.same(
    names,
    [
      ...['f32', 'f64'].flatMap((d) => COLLECTIVES.map((c) => `${c} ${d}`)),
      'allgather_equal bf16',
      'start_gather bf16',
    ].sort(),
    'every collective in f32 and f64, and the bf16 gather',
  );
  t.ok(
    r.host.checks.every((c) => c.pass && c.mismatches === 0),
    `rank ${r.rank}: every result equals its formula`,
  );
  t.equal(r.nccl.ran, false, 'no GPU here: NCCL does not run');
  t.match(r.nccl.reason, /CUDA/, `NCCL says why it did not run: ${r.nccl.reason}`);
}

t.test('one process: the single-process world passes every check', async (t) => {
  const run = medix('selftest', '--dist', '--json');
  t.equal(run.status, 0, run.stderr);
  const [r] = reports(run.stdout);
  checkReport(t, r, 1, 'single');
  const text = medix('selftest', '--dist');
  t.match(text.stdout, /every check passed on every rank/);
  const bare = medix('selftest');
  t.not(bare.status, 0, 'selftest without a choice is an error');
  t.match(bare.stderr, /--dist/);
});

t.test(
  'two ranks under mpirun: MPI passes every check on each rank',
  skipIfMissing(mpiUnavailable(), process.env.MEDIX_NO_MPI === '1'),
  async (t) => {
    const run = await mpirun(2, cli, ['selftest', '--dist', '--json']);
    t.equal(run.code, 0, run.output);
    const rs = reports(run.output);
    t.same(
      rs.map((r) => r.rank),
      [0, 1],
      'each rank reports',
    );
    for (const r of rs) checkReport(t, r, 2, 'mpi');
  },
);
