// `medix info`: what this installation runs on (compiler, vector ISA, GEMM kernels, threads, MPI),
// so a bug report or a benchmark can say exactly which build produced it.
import type { Command } from 'commander';
import { buildInfo, gemmKernel, gemmKernels, threads } from '../engine/system.js';
import { world } from '../engine/world.js';

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print how the native engine was built and what it will use')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const w = world();
      const info = { ...buildInfo(), gemmKernels: gemmKernels(), gemmKernel: gemmKernel(), threads: threads(), world: `${w.backend}, rank ${w.rank} of ${w.size}` };
      if (opts.json) console.log(JSON.stringify(info, null, 2));
      else for (const [k, v] of Object.entries(info)) console.log(`${k.padEnd(12)} ${Array.isArray(v) ? v.join(', ') : v}`);
    });
}
