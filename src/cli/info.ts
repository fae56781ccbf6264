// `medix info`: what this installation runs on (medix and Node versions, compiler, vector ISA, GEMM
// kernels, bf16 conversion paths, BLAS, MPI, CUDA, threads, the libraries found), so a bug report or
// a benchmark can say exactly which build produced it.
import type { Command } from 'commander';
import { existsSync, readFileSync } from 'node:fs';
import { bf16Paths } from '../engine/bf16.js';
import { buildInfo, gemmKernel, gemmKernels, threads } from '../engine/system.js';
import { world } from '../engine/world.js';
import { installedVersion, medixVersion } from './package-version.js';

/** Packages medix uses at run time; the optional ones enable a feature when installed. */
export const LIBRARIES = [
  'onnxruntime-node',
  'sharp',
  'hyparquet',
  'apache-arrow',
  'piscina',
  '@huggingface/tokenizers',
  '@wandb/sdk',
] as const;

/** The NVIDIA kernel driver's version line, when one is loaded. */
function nvidiaDriver(): string | null {
  const file = '/proc/driver/nvidia/version';
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n')[0].trim() : null;
}

export function installationInfo(): Record<string, unknown> {
  const b = buildInfo();
  const w = world();
  const driver = nvidiaDriver();
  return {
    medix: medixVersion(),
    node: process.version,
    ...b,
    cudaInfo: `${b.cudaInfo}; NVIDIA driver: ${driver ?? 'none loaded'}`,
    gemmKernels: gemmKernels(),
    gemmKernel: gemmKernel(),
    // bf16 conversion paths of this CPU, the one used last (bf16 products widen to f32 FMAs on any of them).
    bf16Paths: bf16Paths(),
    threads: threads(),
    world: `${w.backend}, rank ${w.rank} of ${w.size}`,
    libraries: Object.fromEntries(LIBRARIES.map((name) => [name, installedVersion(name) ?? 'not installed'])),
  };
}

export function registerInfo(program: Command): void {
  program
    .command('info')
    .description('print how the native engine was built and what it will use')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) => {
      const info = installationInfo();
      if (opts.json) return console.log(JSON.stringify(info, null, 2));
      for (const [k, v] of Object.entries(info)) {
        if (k === 'libraries')
          for (const [name, version] of Object.entries(v as Record<string, string>))
            console.log(`${'library'.padEnd(12)} ${name} ${version}`);
        else console.log(`${k.padEnd(12)} ${Array.isArray(v) ? v.join(', ') : v}`);
      }
    });
}
