// Runs the `medix` command line as a user does (a child process), for the CLI tests.
import { spawnSync } from 'node:child_process';
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
