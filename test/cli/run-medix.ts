// Runs the `medix` command line as a user does (a child process), for the CLI tests.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';

const cli = join(import.meta.dirname, '../../src/cli/medix.ts');

export interface MedixRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function medix(...args: string[]): MedixRun {
  const r = spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The same, without blocking this process: for tests whose servers (a judge) live in it and must keep answering. */
export function medixAsync(args: string[], stdin = ''): Promise<MedixRun> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['--import', 'tsx', cli, ...args]);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c) => (stdout += c));
    p.stderr.on('data', (c) => (stderr += c));
    p.on('close', (status) => resolve({ status, stdout, stderr }));
    p.stdin.end(stdin);
  });
}
