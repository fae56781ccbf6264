// The fused log-prob head (blocked logits, online log-sum-exp) against the naive form that
// materialises all T x V logits, on a Qwen3-sized vocabulary: speed (time_ratio = naive / fused, goal
// >= 1), extra memory (memory_ratio = naive / fused peak bytes, goal >= 8), and the fused forward +
// backward that a training step runs. Both forms use the same gemm and the same vectorised softmax
// statistics, so the ratios measure the blocking alone; the naive form writes its logits into a buffer
// it keeps between calls, touched by the untimed warm-up, so page faults are not timed.
//
// And against ONNX Runtime's MatMul + LogSoftmax + GatherElements graph on the same thread count:
// ort_ratio = ORT time / fused time (goal >= 1) and rss_ratio = ORT's peak RSS growth / the fused
// head's (goal >= 8), each measured in a child process of its own (bench/logprob-child.ts).
import { logprobBackward, logprobForward, logprobNaive, type LogprobOptions } from '../src/engine/logprob.js';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { gemmKernel, gemmMicroKernel, threads } from '../src/engine/system.js';
import { filled, logprobInputs } from './inputs.js';
import { utilisation } from './machine.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

interface ChildResult {
  ms: number;
  rssGrowthBytes: number;
  selfReportedBytes: number;
}

const child = path.join(path.dirname(fileURLToPath(import.meta.url)), 'logprob-child.ts');

/** Runs one head forward in a child process (bench/logprob-child.ts) and returns what it measured. */
async function childRun(mode: 'ort' | 'fused', T: number, H: number, V: number, reps: number): Promise<ChildResult> {
  const args = ['--import', 'tsx', child, mode, ...[T, H, V, reps, threads()].map(String)];
  const { stdout } = await promisify(execFile)(process.execPath, args, { encoding: 'utf8', timeout: 600_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as ChildResult;
}

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

async function elapsedMs(run: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await run();
  return performance.now() - t0;
}

const bench: BenchModule = {
  order: 20,
  async run(ctx: BenchContext): Promise<BenchRecord[]> {
    const { T, H, V } = ctx.quick ? { T: 256, H: 128, V: 32_768 } : { T: 2048, H: 512, V: 151_936 };
    const reps = ctx.quick ? 1 : 3;
    const { hidden, head } = logprobInputs(T, H, V);
    const targets = new Int32Array(T).map((_, i) => (i % 97 === 96 ? -1 : (i * 7919) % V));
    const dlogp = filled(T, 3, 1 / T);
    const dentropy = filled(T, 4, 1e-3 / T);
    const o: LogprobOptions = { hidden: H, vocab: V, entropy: true };

    // Warm-up (first touch of the buffers, OpenBLAS thread start), which also gives the peak bytes.
    const fusedOut = await logprobForward(hidden, head, targets, o);
    const naiveOut = await logprobNaive(hidden, head, targets, o);
    // Fused and naive alternate within each repetition so that drift in the machine's speed hits both.
    let fused = Infinity,
      naive = Infinity,
      train = Infinity;
    for (let r = 0; r < reps; r++) {
      fused = Math.min(fused, await elapsedMs(() => logprobForward(hidden, head, targets, o)));
      naive = Math.min(naive, await elapsedMs(() => logprobNaive(hidden, head, targets, o)));
      train = Math.min(
        train,
        await elapsedMs(async () => {
          const f = await logprobForward(hidden, head, targets, o);
          await logprobBackward(dlogp, hidden, head, targets, f.lse, o, { entropy: f.entropy!, dentropy });
        }),
      );
    }
    const gflops = (ms: number, passes: number) => (passes * 2 * T * H * V) / (ms / 1000) / 1e9;
    ctx.log(
      `T=${T} H=${H} V=${V}: fused ${fused.toFixed(0)} ms (${gflops(fused, 1).toFixed(0)} GFLOP/s), naive ${naive.toFixed(0)} ms, ` +
        `fused forward+backward ${train.toFixed(0)} ms; peak extra bytes fused ${fusedOut.peakBytes}, naive ${naiveOut.peakBytes}`,
    );

    // The fused head runs on the portable gemm's register kernel whatever gemm kernel is selected (logprob.cc);
    // the naive baseline's logits go through the selected gemm.
    const kernels = `fused on the ${gemmMicroKernel()} register kernel, naive on ${gemmKernel()} gemm`;
    const note = `T=${T} hidden=${H} vocab=${V}, default chunks, ${kernels}, ${threads()} threads, best of ${reps}`;
    const record = (metric: string, value: number, unit: string, extra = '') =>
      ({ name: 'fused_logprob', metric, value, unit, note: extra ? `${extra}; ${note}` : note }) satisfies BenchRecord;
    const records: BenchRecord[] = [
      record('time_ratio', naive / fused, 'x', 'naive forward time / fused forward time (goal >= 1)'),
      record(
        'memory_ratio',
        naiveOut.peakBytes / fusedOut.peakBytes,
        'x',
        'naive / fused peak extra bytes (goal >= 8)',
      ),
      record('fused_forward_ms', fused, 'ms'),
      record('naive_forward_ms', naive, 'ms'),
      record('fused_forward_backward_ms', train, 'ms', 'forward, then backward with the entropy term'),
      record('fused_forward_gflops', gflops(fused, 1), 'GFLOP/s', 'logits gemm flops / fused forward time'),
      record('fused_forward_backward_gflops', gflops(train, 4), 'GFLOP/s', 'forward 1 + backward 3 logits-sized gemms'),
      record('fused_peak_bytes', fusedOut.peakBytes, 'bytes'),
      record('naive_peak_bytes', naiveOut.peakBytes, 'bytes'),
    ];
    records.push(...utilisation(ctx, 'fused_logprob', 'fused_forward_vs_peak', gflops(fused, 1), note));

    const ortRun = await childRun('ort', T, H, V, reps);
    const fusedRun = await childRun('fused', T, H, V, reps);
    // A growth below one page (the allocator reused memory it already had) counts as one page.
    const page = 4096;
    ctx.log(
      `child processes: ORT ${ortRun.ms.toFixed(0)} ms, RSS +${mib(ortRun.rssGrowthBytes)} MiB; ` +
        `fused ${fusedRun.ms.toFixed(0)} ms, RSS +${mib(fusedRun.rssGrowthBytes)} MiB ` +
        `(self-reported ${mib(fusedRun.selfReportedBytes)} MiB)`,
    );
    const ortNote =
      `ONNX Runtime MatMul+LogSoftmax+GatherElements vs fused forward without entropy, T=${T} hidden=${H} ` +
      `vocab=${V}, ${threads()} threads each, each in a child process, best of ${reps}`;
    const ort = (metric: string, value: number, unit: string, what = '') =>
      records.push({ name: 'fused_logprob', metric, value, unit, note: what ? `${what}; ${ortNote}` : ortNote });
    ort('ort_ratio', ortRun.ms / fusedRun.ms, 'x', 'ORT time / fused time (goal >= 1)');
    const rssRatio = ortRun.rssGrowthBytes / Math.max(page, fusedRun.rssGrowthBytes);
    ort('rss_ratio', rssRatio, 'x', 'ORT / fused peak RSS growth (goal >= 8)');
    ort('ort_forward_ms', ortRun.ms, 'ms');
    ort('ort_rss_growth_bytes', ortRun.rssGrowthBytes, 'bytes');
    const selfReported = `self-reported peak ${fusedRun.selfReportedBytes} bytes`;
    ort('fused_rss_growth_bytes', fusedRun.rssGrowthBytes, 'bytes', selfReported);
    return records;
  },
};

export default bench;
