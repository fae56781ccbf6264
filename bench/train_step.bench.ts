// One training step (forward to log-probs, backward, AdamW) of a Qwen3-shaped model on the CPU,
// as tokens/s and model FLOP utilisation against the FMA peak (and the best sgemm) measured in the run.
//
// Model FLOPs per step (the usual accounting; recomputation is not counted):
//   6 * T * (matrix parameters, the output head included)       linear layers, fwd + bwd
// + 3 * layers * 4 * heads * head_dim * sum over sequences of L(L+1)/2   causal attention
//   (QK^T and PV are 2*heads*head_dim flops per query-key pair each; backward is twice forward).
import { setComputeDtype } from '../src/engine/bf16.js';
import { Model, packSequences, type Qwen3Config } from '../src/engine/model.js';
import { parallelForCostUs, setOpProfiling, takeOpProfile } from '../src/engine/system.js';
import { utilisation } from './machine.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

// Shared with the generate bench, which decodes with the same model shape.
export const full: Qwen3Config = {
  vocabSize: 151936,
  hiddenSize: 512,
  intermediateSize: 1536,
  numLayers: 8,
  numHeads: 8,
  numKvHeads: 4,
  headDim: 64,
  ropeTheta: 1e6,
  rmsEps: 1e-6,
  tieEmbeddings: true,
};
export const quick: Qwen3Config = {
  ...full,
  vocabSize: 8192,
  hiddenSize: 128,
  intermediateSize: 384,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 32,
};

export function modelFlops(c: Qwen3Config, seqLens: number[]): number {
  const T = seqLens.reduce((a, b) => a + b, 0);
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const perLayer = c.hiddenSize * (2 * q + 2 * kv) + 3 * c.hiddenSize * c.intermediateSize;
  const matrixParams = c.numLayers * perLayer + c.vocabSize * c.hiddenSize;
  const pairs = seqLens.reduce((a, L) => a + (L * (L + 1)) / 2, 0);
  return 6 * T * matrixParams + 3 * c.numLayers * 4 * q * pairs;
}

interface StepTimes {
  total: number;
}

/**
 * One more step with op profiling on: the share of its time in each kind of op (GFLOP/s where the op's
 * matrix products are counted), outside the ops (JavaScript, buffer set-up), and an estimate of the
 * pool's wake-ups (parallel_for calls x the cost of an empty one, measured here).
 */
async function profile(ctx: BenchContext, step: () => Promise<StepTimes>): Promise<BenchRecord[]> {
  takeOpProfile();
  setOpProfiling(true);
  let total: number;
  try {
    total = (await step()).total;
  } finally {
    setOpProfiling(false);
  }
  const p = takeOpProfile();
  const wakeUs = Math.min(parallelForCostUs(), parallelForCostUs());
  const records: BenchRecord[] = [];
  const share = (metric: string, ms: number, note: string) => {
    const where = `${ms.toFixed(1)} ms of a ${total.toFixed(0)} ms profiled step`;
    records.push({ name: 'train_step', metric, value: ms / total, unit: 'fraction', note: `${where}; ${note}` });
    ctx.log(`  ${metric.padEnd(28)} ${((100 * ms) / total).toFixed(1).padStart(5)} %  ${note}`);
  };
  ctx.log("profile of one step (op wall times; parallel ops include their threads' wake-ups):");
  let inOps = 0;
  for (const [kind, k] of Object.entries(p.kinds).sort((a, b) => b[1].ms - a[1].ms)) {
    inOps += k.ms;
    const rate = k.flops > 0 ? `, ${(k.flops / (k.ms / 1000) / 1e9).toFixed(1)} GFLOP/s of matrix products` : '';
    share(`profile_${kind}`, k.ms, `${k.calls} calls${rate}`);
  }
  share('profile_outside_ops', Math.max(0, total - inOps), 'JavaScript, buffer set-up, gradient bookkeeping');
  const wakeups = `${p.parallelCalls} parallel_for calls x ${wakeUs.toFixed(1)} us (an empty one, measured)`;
  share('profile_wakeups_estimate', (p.parallelCalls * wakeUs) / 1000, `${wakeups}, inside the ops above`);
  return records;
}

const bench: BenchModule = {
  order: 10,
  async run(ctx: BenchContext): Promise<BenchRecord[]> {
    const c = ctx.quick ? quick : full;
    const T = ctx.quick ? 256 : 2048;
    const seqLens = [T];
    const tokens = Array.from({ length: T }, (_, i) => (i * 7919) % c.vocabSize);
    const batch = packSequences([tokens]);
    const model = Model.create(c, { seed: 1 });
    const dlogp = new Float32Array(T).fill(-1 / T);
    const step = async () => {
      const t0 = performance.now();
      await model.forward(batch, { training: true });
      const t1 = performance.now();
      model.zeroGrad();
      await model.backward({ dlogp });
      const t2 = performance.now();
      await model.optimizerStep({ lr: 1e-5, maxGradNorm: 1 });
      const t3 = performance.now();
      return { forward: t1 - t0, backward: t2 - t1, optimizer: t3 - t2, total: t3 - t0 };
    };
    // The fastest of a few steps after a warm-up (which allocates the workspace and optimizer state).
    const bestStep = async () => {
      await step();
      const runs = [];
      for (let i = 0; i < (ctx.quick ? 1 : 2); i++) runs.push(await step());
      return runs.reduce((a, b) => (b.total < a.total ? b : a));
    };
    const best = await bestStep();
    const flops = modelFlops(c, seqLens);
    const achieved = flops / (best.total / 1000) / 1e9;
    const shape = `${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${T} tokens, ${(model.numParameters / 1e6).toFixed(1)}M params`;
    ctx.log(
      `train_step: ${shape}: forward ${best.forward.toFixed(0)} ms, backward ${best.backward.toFixed(0)} ms, optimizer ${best.optimizer.toFixed(0)} ms`,
    );
    const records: BenchRecord[] = [
      { name: 'train_step', metric: 'tokens_per_s', value: T / (best.total / 1000), unit: 'tokens/s', note: shape },
      { name: 'train_step', metric: 'model_gflops', value: achieved, unit: 'GFLOP/s', note: shape },
      { name: 'train_step', metric: 'step_ms', value: best.total, unit: 'ms', note: shape },
    ];
    records.push(...utilisation(ctx, 'train_step', 'mfu', achieved, shape));
    records.push(...(await profile(ctx, step)));
    // The same step with the bf16 compute copy (the decoder's projections; the fused head stays f32).
    setComputeDtype(model, 'bf16');
    const bf16 = await bestStep();
    setComputeDtype(model, 'f32');
    ctx.log(`train_step bf16: ${bf16.total.toFixed(0)} ms (${(best.total / bf16.total).toFixed(2)}x the f32 step)`);
    records.push(
      {
        name: 'train_step',
        metric: 'tokens_per_s_bf16',
        value: T / (bf16.total / 1000),
        unit: 'tokens/s',
        note: `${shape}, bf16 compute`,
      },
      { name: 'train_step', metric: 'step_ms_bf16', value: bf16.total, unit: 'ms', note: `${shape}, bf16 compute` },
      {
        name: 'train_step',
        metric: 'bf16_speedup',
        value: best.total / bf16.total,
        unit: 'ratio',
        note: 'f32 step time over the bf16 compute step time, same run (f32 master weights, gradients, moments)',
      },
    );
    return records;
  },
};

export default bench;
