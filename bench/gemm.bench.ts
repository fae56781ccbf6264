// sgemm throughput of every kernel: the portable one on each register kernel this CPU can run, and
// OpenBLAS with the core it chose (or the one OPENBLAS_CORETYPE forced). The best large square product
// is the run's best sgemm (ctx.sgemmGflops), which the other benchmarks also report their
// utilisation against, next to the FMA peak; gemm/best_vs_fma says how close the best sgemm comes to
// that peak. A model-shaped product (tokens x intermediate x hidden) shows what the MLP layers of the
// train_step benchmark's model get.
import {
  gemm,
  gemmKernel,
  gemmKernels,
  gemmMicroKernel,
  gemmMicroKernels,
  setGemmKernel,
  setGemmMicroKernel,
  threads,
  type GemmKernelName,
} from '../src/engine/system.js';
import { filled } from './inputs.js';
import { openblasCore } from './machine.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';
interface Shape {
  M: number;
  N: number;
  K: number;
}

const describe = (s: Shape) => `${s.M}x${s.N}x${s.K}`;

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

interface Candidate {
  /** Record prefix: portable (the default register kernel), portable_<other register kernel>, openblas. */
  label: string;
  kernel: GemmKernelName;
  micro?: string;
  describe: string;
}

const bench: BenchModule = {
  order: 0,
  async run(ctx: BenchContext): Promise<BenchRecord[]> {
    const square: Shape = ctx.quick ? { M: 512, N: 512, K: 512 } : { M: 2048, N: 2048, K: 2048 };
    const model: Shape = ctx.quick ? { M: 512, N: 384, K: 128 } : { M: 2048, N: 1536, K: 512 };
    const reps = ctx.quick ? 2 : 5;
    // Portable first: OpenBLAS's idle threads busy-wait for a while after a call and could slow it down.
    const previous = { kernel: gemmKernel(), micro: gemmMicroKernel() };
    const candidates: Candidate[] = gemmMicroKernels().map((micro) => ({
      label: micro === previous.micro ? 'portable' : `portable_${micro}`,
      kernel: 'portable',
      micro,
      describe: `portable kernel, ${micro} register kernel`,
    }));
    if (gemmKernels().includes('openblas'))
      candidates.push({ label: 'openblas', kernel: 'openblas', describe: `OpenBLAS, core ${openblasCore()}` });
    const results = new Map<Candidate, { square: number; model: number }>();
    try {
      for (const c of candidates) {
        if (c.micro) setGemmMicroKernel(c.micro);
        const r = { square: measure(c.kernel, square, reps), model: measure(c.kernel, model, reps) };
        const rate = (s: Shape, gflops: number) => `${describe(s)} ${gflops.toFixed(1)} GFLOP/s`;
        ctx.log(`${c.describe}: ${rate(square, r.square)}, ${rate(model, r.model)}`);
        results.set(c, r);
      }
    } finally {
      setGemmKernel(previous.kernel);
      setGemmMicroKernel(previous.micro);
    }

    const where = `${threads()} threads, best of ${reps}`;
    const records: BenchRecord[] = [];
    const record = (metric: string, value: number, unit: string, note: string) =>
      records.push({ name: 'gemm', metric, value, unit, note });
    for (const [c, r] of results) {
      record(`${c.label}_gflops`, r.square, 'GFLOP/s', `${describe(square)}, ${c.describe}, ${where}`);
      const modelShape = `${describe(model)} (tokens x intermediate x hidden)`;
      record(`${c.label}_model_gflops`, r.model, 'GFLOP/s', `${modelShape}, ${c.describe}, ${where}`);
    }
    // The portable kernel as the engine runs it (its default, widest register kernel), against OpenBLAS.
    const portable = [...results].find(([c]) => c.micro === previous.micro)![1];
    const openblas = [...results].find(([c]) => c.kernel === 'openblas')?.[1];
    if (openblas) {
      const micro = previous.micro;
      record('portable_vs_openblas', portable.square / openblas.square, 'fraction', `${describe(square)}, ${micro}`);
      record('portable_vs_openblas_model', portable.model / openblas.model, 'fraction', `${describe(model)}, ${micro}`);
    }
    const [best, bestResult] = [...results].reduce((a, b) => (b[1].square > a[1].square ? b : a));
    ctx.sgemmGflops = bestResult.square;
    ctx.sgemmKernel = best.describe;
    record('peak_gflops', ctx.sgemmGflops, 'GFLOP/s', `best sgemm of the run: ${best.describe}, ${describe(square)}`);
    if (ctx.fmaGflops > 0)
      record(
        'best_vs_fma',
        ctx.sgemmGflops / ctx.fmaGflops,
        'fraction',
        `best sgemm (${best.describe}, ${describe(square)}) / ` +
          `${ctx.fmaIsa} FMA peak ${ctx.fmaGflops.toFixed(1)} GFLOP/s`,
      );
    return records;
  },
};

export default bench;
