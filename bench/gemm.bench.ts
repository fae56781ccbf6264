// sgemm throughput of both kernels. OpenBLAS on a large square product is the machine's measured peak
// (ctx.peakGflops), which the other benchmarks report their utilisation against; without OpenBLAS the
// portable kernel's figure stands in. A model-shaped product (tokens x intermediate x hidden) shows what
// the MLP layers of the train_step benchmark's model get.
import {
  gemm,
  gemmKernel,
  gemmKernels,
  setGemmKernel,
  threads,
  type GemmKernelName,
} from '../src/engine/system.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

interface Shape {
  M: number;
  N: number;
  K: number;
}

const describe = (s: Shape) => `${s.M}x${s.N}x${s.K}`;

/** Deterministic values in [-1, 1): the speed does not depend on them, the run-to-run comparison should not either. */
function filled(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x / 2 ** 31 - 1;
  }
  return out;
}

/** Best GFLOP/s of `reps` timed runs after one warm-up run (which also faults in the pack buffers). */
function measure(kernel: GemmKernelName, s: Shape, reps: number): number {
  setGemmKernel(kernel);
  const A = filled(s.M * s.K, 1);
  const B = filled(s.K * s.N, 2);
  const C = new Float32Array(s.M * s.N);
  const run = () => gemm({ M: s.M, N: s.N, K: s.K, A, B, C });
  run();
  let best = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    run();
    best = Math.min(best, performance.now() - t0);
  }
  return (2 * s.M * s.N * s.K) / (best / 1000) / 1e9;
}

const bench: BenchModule = {
  order: 0,
  async run(ctx: BenchContext): Promise<BenchRecord[]> {
    const square: Shape = ctx.quick ? { M: 512, N: 512, K: 512 } : { M: 2048, N: 2048, K: 2048 };
    const model: Shape = ctx.quick ? { M: 512, N: 384, K: 128 } : { M: 2048, N: 1536, K: 512 };
    const reps = ctx.quick ? 2 : 5;
    const withOpenblas = gemmKernels().includes('openblas');
    // Portable first: OpenBLAS's idle threads busy-wait for a while after a call and could slow it down.
    const kernels: GemmKernelName[] = withOpenblas ? ['portable', 'openblas'] : ['portable'];
    const previous = gemmKernel();
    const results = new Map<GemmKernelName, { square: number; model: number }>();
    try {
      for (const k of kernels) {
        const r = { square: measure(k, square, reps), model: measure(k, model, reps) };
        ctx.log(`${k}: ${describe(square)} ${r.square.toFixed(1)} GFLOP/s, ${describe(model)} ${r.model.toFixed(1)} GFLOP/s`);
        results.set(k, r);
      }
    } finally {
      setGemmKernel(previous);
    }

    const where = `${threads()} threads, best of ${reps}`;
    const records: BenchRecord[] = [];
    const record = (metric: string, value: number, unit: string, note: string) =>
      records.push({ name: 'gemm', metric, value, unit, note });
    for (const [k, r] of results) {
      record(`${k}_gflops`, r.square, 'GFLOP/s', `${describe(square)}, ${where}`);
      record(`${k}_model_gflops`, r.model, 'GFLOP/s', `${describe(model)} (tokens x intermediate x hidden), ${where}`);
    }
    const portable = results.get('portable')!;
    const openblas = results.get('openblas');
    if (openblas) {
      record('portable_vs_openblas', portable.square / openblas.square, 'fraction', describe(square));
      record('portable_vs_openblas_model', portable.model / openblas.model, 'fraction', describe(model));
    }
    ctx.peakGflops = openblas ? openblas.square : portable.square;
    const source = openblas ? 'OpenBLAS sgemm' : 'portable kernel (OpenBLAS not built in)';
    record('peak_gflops', ctx.peakGflops, 'GFLOP/s', `${source}, ${describe(square)}`);
    return records;
  },
};

export default bench;
