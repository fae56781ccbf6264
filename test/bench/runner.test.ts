// Keeps the benchmark runner working: runs the quick gemm benchmark as `npm run bench` would and checks
// the JSON records it writes (with the FMA peak the runner always measures), and that bad arguments
// fail with a message instead of running anything.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t from 'tap';

import { gemmKernels, gemmMicroKernels } from '../../src/engine/system.js';
import type { BenchRecord } from '../../bench/types.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tsx = path.join(root, 'node_modules', '.bin', 'tsx');
const run = promisify(execFile);

async function runBench(args: string[]) {
  return run(tsx, ['bench/run.ts', ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
}

t.test('--quick --only gemm --json writes positive finite gemm records and the FMA peak', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'medix-bench-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'out.json');
  const { stdout } = await runBench(['--quick', '--only', 'gemm', '--json', file]);

  const records = JSON.parse(fs.readFileSync(file, 'utf8')) as BenchRecord[];
  t.ok(Array.isArray(records), 'the file holds an array');
  const metrics = new Map(records.filter((r) => r.name === 'gemm').map((r) => [r.metric, r]));
  const expected = ['portable_gflops', 'portable_model_gflops', 'peak_gflops'];
  if (gemmKernels().includes('openblas'))
    expected.push('openblas_gflops', 'openblas_model_gflops', 'portable_vs_openblas');
  for (const micro of gemmMicroKernels().slice(0, -1)) expected.push(`portable_${micro}_gflops`);
  const fmaProbe = process.arch === 'x64';
  if (fmaProbe) expected.push('best_vs_fma');
  for (const m of expected) {
    const r = metrics.get(m);
    t.ok(r, `record gemm/${m} present`);
    if (r)
      t.ok(Number.isFinite(r.value) && r.value > 0 && typeof r.unit === 'string', `gemm/${m} = ${r.value} ${r.unit}`);
  }
  const peak = records.find((r) => r.name === 'cpu_peak' && r.metric === 'fma_gflops');
  if (fmaProbe) t.ok(peak && peak.value > 0 && peak.unit === 'GFLOP/s', `cpu_peak/fma_gflops = ${peak?.value}`);
  t.notOk(
    records.some((r) => r.name !== 'gemm' && r.name !== 'cpu_peak'),
    '--only gemm ran nothing else',
  );
  t.match(stdout, /^name\s+metric\s+value\s+unit/m, 'prints a table');
  if (gemmKernels().includes('openblas')) t.match(stdout, /OpenBLAS core: \S+/, 'prints the core OpenBLAS uses');
});

/** Runs the runner expecting it to fail; returns its exit code and stderr. */
async function runFailing(args: string[]): Promise<{ code: unknown; stderr: string }> {
  try {
    await runBench(args);
  } catch (err) {
    const e = err as { code?: unknown; stderr?: string };
    return { code: e.code, stderr: e.stderr ?? '' };
  }
  return { code: 0, stderr: '' };
}

t.test('bad arguments fail with a message', async (t) => {
  for (const [args, message] of [
    [['--only', 'nope'], /no benchmark named nope; available: .*gemm/],
    [['--json'], /--json needs a value/],
    [['--fast'], /unknown argument '--fast'/],
  ] as const) {
    const { code, stderr } = await runFailing([...args]);
    t.equal(code, 2, `${args.join(' ')}: exit code 2`);
    t.match(stderr, message, `${args.join(' ')}: says why`);
  }
});
