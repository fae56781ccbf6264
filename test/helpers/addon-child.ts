// Runs a snippet against the addon in a fresh Node process with extra environment variables: for
// settings the addon reads once (MEDIX_GEMM, MEDIX_CPU), which this process has already read.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const addonPath = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'build', 'Release', 'medix.node');

/** What `code` (with the addon as `a`) prints, or the message of what it threw. */
export function withAddonEnv(env: Record<string, string>, code: string): string {
  return execFileSync(
    process.execPath,
    ['-e', `const a = require(${JSON.stringify(addonPath)}); try { ${code} } catch (e) { console.log(e.message) }`],
    { env: { ...process.env, ...env }, encoding: 'utf8' },
  ).trim();
}
