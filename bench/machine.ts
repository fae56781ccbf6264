// What the runner and the benchmarks say about the machine: the OpenBLAS core in use, and utilisation
// records against the FMA peak and the best sgemm of the run.
import { buildInfo } from '../src/engine/system.js';
import type { BenchContext, BenchRecord } from './types.js';

/** OpenBLAS's core as it reports it, and whether OPENBLAS_CORETYPE forced it. */
export function openblasCore(): string {
  const core = /core=(\S+)/.exec(buildInfo().openblasInfo)?.[1] ?? 'unknown';
  const forced = process.env.OPENBLAS_CORETYPE;
  return forced ? `${core} (forced by OPENBLAS_CORETYPE=${forced})` : `${core} (chosen by OpenBLAS for this CPU)`;
}

/**
 * Utilisation records of a measured rate: `metric` against the FMA peak, and `${metric}_vs_sgemm`
 * against the best sgemm of the run (when the gemm bench ran).
 */
export function utilisation(
  ctx: BenchContext,
  name: string,
  metric: string,
  gflops: number,
  note: string,
): BenchRecord[] {
  const fma = `${ctx.fmaIsa} FMA peak ${ctx.fmaGflops.toFixed(1)} GFLOP/s`;
  const records: BenchRecord[] = [];
  if (ctx.fmaGflops > 0) {
    const value = gflops / ctx.fmaGflops;
    records.push({ name, metric, value, unit: 'fraction', note: `${note}; against the ${fma}` });
  }
  if (ctx.sgemmGflops)
    records.push({
      name,
      metric: `${metric}_vs_sgemm`,
      value: gflops / ctx.sgemmGflops,
      unit: 'fraction',
      note: `${note}; against the best sgemm ${ctx.sgemmGflops.toFixed(1)} GFLOP/s (${ctx.sgemmKernel})`,
    });
  return records;
}
