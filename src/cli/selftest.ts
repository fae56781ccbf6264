// `medix selftest --dist`: before a long run on a new node, check that the collectives the trainer
// relies on give exact results on every engine this run can use (MPI or one process on host buffers;
// NCCL on device buffers when every rank has a GPU), and that NCCL agrees with MPI bit for bit.
// Run it the way training runs: `mpirun -np 8 npx medix selftest --dist`. Exits 1 when a check fails
// on any rank.
import type { Command } from 'commander';
import { distSelftest, type EngineSelftest } from '../engine/dist-selftest.js';

function describe(e: EngineSelftest): string[] {
  if (!e.ran) return [`${e.engine.padEnd(6)} not run: ${e.reason}`];
  return e.checks.map(
    (c) =>
      `${e.engine.padEnd(6)} ${`${c.collective} ${c.dtype}`.padEnd(24)} ` +
      (c.pass ? 'ok' : `FAIL (${c.mismatches} elements differ from the formula)`),
  );
}

export function registerSelftest(program: Command): void {
  program
    .command('selftest')
    .description('check this installation on this machine; --dist: every collective on every engine (MPI, NCCL)')
    .option('--dist', 'the collectives, on each engine the run can use, against their formulas and each other')
    .option('--json', 'print JSON, one line per rank (each rank reports its own checks)')
    .action(async (opts: { dist?: boolean; json?: boolean }) => {
      if (!opts.dist) throw new Error('medix selftest: choose what to check (--dist)');
      const r = await distSelftest();
      if (opts.json) console.log(JSON.stringify(r));
      else if (r.rank === 0) {
        console.log(`medix selftest --dist: ${r.size} rank(s); rank 0's checks:`);
        for (const line of [...describe(r.host), ...describe(r.nccl)]) console.log(`  ${line}`);
        if (r.nccl.ran) console.log(`  nccl vs ${r.host.engine}: ${r.enginesDiffer} result(s) differ`);
        console.log(
          r.failedAllRanks === 0
            ? 'medix selftest --dist: every check passed on every rank'
            : `medix selftest --dist: ${r.failedAllRanks} check(s) failed across the ranks`,
        );
      }
      if (r.failedAllRanks > 0) process.exitCode = 1;
    });
}
