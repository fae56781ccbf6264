// Benchmark runner: measures the machine's FMA peak (record cpu_peak/fma_gflops, every MFU is against
// it), finds bench/*.bench.ts, runs them by their `order` (the gemm bench first, as it measures the best
// sgemm the others are also compared with), prints a table and optionally writes the records as JSON.
//
//   tsx bench/run.ts [--quick] [--only NAME[,NAME]] [--json FILE]
//   tsx bench/run.ts --device cuda [--quick] [--hf FILE] [--json FILE]
//
// NAME is a file name without ".bench.ts" (gemm, train_step, ...). `--device cuda` runs the GPU model
// benchmark instead (bench/gpu/model-bench.ts), against transformers when --hf names the JSON line of
// scripts/device/hf_model_bench.py run on the same GPU. `npm run bench` unsets
// OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE so that OpenBLAS picks its kernel for this CPU; the core it chose
// is printed first.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { DEVICES, type Device } from '../src/config/schema.js';
import { buildInfo, cpuInfo, fmaPeak, gemmKernel, gemmMicroKernel, threads } from '../src/engine/system.js';
import { FULL_SHAPE, measureMedix, modelBenchRecords, QUICK_SHAPE, readHfResult } from './gpu/model-bench.js';
import { openblasCore } from './machine.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

interface Args {
  quick: boolean;
  device: Device;
  only?: string[];
  json?: string;
  hf?: string;
}

const USAGE =
  'usage: tsx bench/run.ts [--quick] [--only NAME[,NAME]] [--json FILE]\n' +
  '       tsx bench/run.ts --device cuda [--quick] [--hf FILE] [--json FILE]';

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, device: 'cpu' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      const v = argv[++i];
      if (v === undefined || v.startsWith('--')) throw new Error(`${flag} needs a value\n${USAGE}`);
      return v;
    };
    if (flag === '--quick') args.quick = true;
    else if (flag === '--only')
      args.only = value()
        .split(',')
        .filter((s) => s.length > 0);
    else if (flag === '--json') args.json = value();
    else if (flag === '--hf') args.hf = value();
    else if (flag === '--device') {
      const d = value();
      if (!(DEVICES as readonly string[]).includes(d)) throw new Error(`--device must be cpu or cuda, not '${d}'`);
      args.device = d as Device;
    } else throw new Error(`unknown argument '${flag}'\n${USAGE}`);
  }
  if (args.device === 'cuda' && args.only) throw new Error(`--only names CPU benchmarks; not with --device cuda`);
  if (args.device === 'cpu' && args.hf)
    throw new Error(`--hf is the GPU model benchmark's baseline: with --device cuda`);
  return args;
}

interface Bench {
  name: string;
  module: BenchModule;
}

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const SUFFIX = '.bench.ts';

async function discover(only: string[] | undefined): Promise<Bench[]> {
  const names = fs
    .readdirSync(benchDir)
    .filter((f) => f.endsWith(SUFFIX))
    .map((f) => f.slice(0, -SUFFIX.length))
    .sort();
  const unknown = (only ?? []).filter((n) => !names.includes(n));
  if (unknown.length) throw new Error(`no benchmark named ${unknown.join(', ')}; available: ${names.join(', ')}`);
  const benches: Bench[] = [];
  for (const name of names.filter((n) => !only || only.includes(n))) {
    const mod = (await import(pathToFileURL(path.join(benchDir, name + SUFFIX)).href)) as { default?: BenchModule };
    if (!mod.default || typeof mod.default.run !== 'function' || typeof mod.default.order !== 'number')
      throw new Error(`bench/${name}${SUFFIX} must default-export a BenchModule ({ order, run })`);
    benches.push({ name, module: mod.default });
  }
  return benches.sort((a, b) => a.module.order - b.module.order || a.name.localeCompare(b.name));
}

function checkRecord(bench: string, r: BenchRecord): void {
  const ok =
    typeof r.name === 'string' &&
    typeof r.metric === 'string' &&
    typeof r.unit === 'string' &&
    Number.isFinite(r.value);
  if (!ok) throw new Error(`bench ${bench} returned a malformed record: ${JSON.stringify(r)}`);
}

function formatValue(v: number): string {
  return Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4);
}

function printTable(records: BenchRecord[]): void {
  const rows = records.map((r) => [r.name, r.metric, formatValue(r.value), r.unit, r.note ?? '']);
  const header = ['name', 'metric', 'value', 'unit', 'note'];
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, c) => (c === 2 ? cell.padStart(widths[c]) : cell.padEnd(widths[c])))
      .join('  ')
      .trimEnd();
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of rows) console.log(line(row));
}

function printEnvironment(): void {
  const info = buildInfo();
  const cpu = cpuInfo();
  const caches = `L1d ${cpu.l1dBytes >> 10} KiB, L2 ${cpu.l2Bytes >> 10} KiB, L3 ${cpu.l3Bytes >> 20} MiB`;
  console.log(`CPU: ${cpu.features}; ${caches}`);
  console.log(
    `medix addon: ${info.compiler}, built for ${info.simd}, ${threads()} threads, gemm kernel '${gemmKernel()}', ` +
      `portable register kernel '${gemmMicroKernel()}'`,
  );
  if (info.openblas) {
    console.log(`OpenBLAS: ${info.openblasInfo}`);
    console.log(`OpenBLAS core: ${openblasCore()}`);
  } else {
    console.log('OpenBLAS: not built in (the portable kernel is the only one)');
  }
}

function writeResults(records: BenchRecord[], json: string | undefined): void {
  console.log('');
  printTable(records);
  if (json) {
    fs.writeFileSync(json, `${JSON.stringify(records, null, 2)}\n`);
    console.log(`\nwrote ${records.length} records to ${json}`);
  }
}

/** `--device cuda`: medix's train step and decode on the GPU, with ratios to transformers' when --hf is given. */
async function runGpu(args: Args): Promise<number> {
  const shape = args.quick ? QUICK_SHAPE : FULL_SHAPE;
  const hf = args.hf ? readHfResult(args.hf, shape) : undefined;
  if (!hf) console.log('no transformers baseline: pass --hf FILE, the output of scripts/device/hf_model_bench.py');
  const medix = await measureMedix('cuda', shape, (line) => console.log(`  ${line}`));
  writeResults(modelBenchRecords(medix, shape, hf), args.json);
  return 0;
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  if (args.device === 'cuda') return runGpu(args);
  const benches = await discover(args.only);
  printEnvironment();
  // Register-only FMA probe: the arithmetic ceiling, in this run, on the bench's thread count.
  // Best of many 2 ms runs: on a shared machine, one of them finds every core free.
  const peakRuns = args.quick ? 50 : 200;
  const peak = fmaPeak(peakRuns, 2);
  console.log(`FMA peak: ${peak.gflops.toFixed(1)} GFLOP/s (${peak.isa}, ${threads()} threads)`);
  const ctx: BenchContext = {
    quick: args.quick,
    fmaGflops: peak.gflops,
    fmaIsa: peak.isa,
    log: (line) => console.log(`  ${line}`),
  };
  const records: BenchRecord[] = [];
  if (peak.gflops > 0)
    records.push({
      name: 'cpu_peak',
      metric: 'fma_gflops',
      value: peak.gflops,
      unit: 'GFLOP/s',
      note: `register-only ${peak.isa} FMA probe, ${threads()} threads, best of ${peakRuns} 2 ms runs; ${cpuInfo().features}`,
    });
  else console.log('(no FMA probe for this CPU: MFU figures are against the best sgemm only)');
  let failed = 0;
  for (const b of benches) {
    console.log(`\n== ${b.name}${args.quick ? ' (quick)' : ''}`);
    const t0 = performance.now();
    try {
      const out = await b.module.run(ctx);
      out.forEach((r) => checkRecord(b.name, r));
      records.push(...out);
      console.log(`  done in ${((performance.now() - t0) / 1000).toFixed(2)} s`);
    } catch (err) {
      failed++;
      console.error(`  FAILED: ${(err as Error).stack ?? err}`);
    }
  }
  if (ctx.sgemmGflops === undefined)
    console.log('\n(no sgemm measured in this run: the *_vs_sgemm figures are left out; include the gemm bench)');
  writeResults(records, args.json);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(2);
  },
);
