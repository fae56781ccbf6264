// The contract between benchmark files and the runner (bench/run.ts).
// Each bench/<area>.bench.ts default-exports a BenchModule; the runner calls run() and prints and
// (with --json FILE) writes every record. Record names are a contract: scripts look them up.

export interface BenchRecord {
  /** Benchmark name, e.g. "gemm", "train_step", "fused_logprob". */
  name: string;
  /** What was measured, e.g. "gflops", "mfu", "time_ratio". */
  metric: string;
  value: number;
  /** "GFLOP/s", "fraction", "x", "tokens/s", "ms", "bytes", ... */
  unit: string;
  /** Free-form context (shapes, kernel, thread count). */
  note?: string;
}

export interface BenchContext {
  /** --quick: smaller shapes and fewer repetitions (used by the test that keeps the runner working). */
  quick: boolean;
  /** FMA throughput of the widest vector unit, all threads (the register-only probe the runner runs first). */
  fmaGflops: number;
  /** The vector unit that probe measured, e.g. "AVX-512". */
  fmaIsa: string;
  /** Best sgemm GFLOP/s measured in this run, and which kernel reached it (set by the gemm bench, which runs first). */
  sgemmGflops?: number;
  sgemmKernel?: string;
  log: (line: string) => void;
}

export interface BenchModule {
  /** Lower runs first; the gemm bench (order 0) measures the best sgemm the others compare with. */
  order: number;
  run: (ctx: BenchContext) => Promise<BenchRecord[]>;
}
