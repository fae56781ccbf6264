// Running a TypeScript file as the ranks of an MPI world (mpirun), for the distributed tests.
import { spawn, spawnSync } from 'node:child_process';
import { buildInfo } from '../../src/engine/system.js';

/** Why the MPI tests cannot run here, or null when they can. */
export function mpiUnavailable(): string | null {
  if (!buildInfo().mpi) return 'the addon was built without MPI (no mpicc at build time, or MEDIX_NO_MPI=1)';
  if (!hasMpirun()) return 'mpirun is not installed';
  return null;
}

export function hasMpirun(): boolean {
  return spawnSync('mpirun', ['--version'], { stdio: 'ignore' }).status === 0;
}

export interface MpirunResult {
  code: number | null;
  output: string;
}

/**
 * `mpirun -np <ranks> node --import tsx <script> <args...>`, its exit code and its stdout+stderr.
 * timeoutS: mpirun aborts the job after that many seconds (a test of a hang fails instead of waiting
 * for tap's limit and leaving its ranks behind).
 */
export function mpirun(
  ranks: number,
  script: string,
  args: string[] = [],
  env: Record<string, string> = {},
  timeoutS?: number,
): Promise<MpirunResult> {
  // As root Open MPI wants to be told twice; the test machine may have fewer cores than ranks.
  const asRoot = process.getuid?.() === 0 ? ['--allow-run-as-root'] : [];
  const argv = [
    ...asRoot,
    '--oversubscribe',
    ...(timeoutS ? ['--timeout', String(timeoutS)] : []),
    '-np',
    String(ranks),
    process.execPath,
    '--import',
    'tsx',
    script,
    ...args,
  ];
  return new Promise((resolve) => {
    const child = spawn('mpirun', argv, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    child.on('close', (code) => resolve({ code, output }));
  });
}
