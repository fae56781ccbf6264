// One training step (forward to log-probs, backward, AdamW) of a Qwen3-shaped model on the CPU,
// as tokens/s and model FLOP utilisation against the FMA peak (and the best sgemm) measured in the run.
//
// Model FLOPs per step (the usual accounting; recomputation is not counted):
//   6 * T * (matrix parameters, the output head included)       linear layers, fwd + bwd
// + 3 * layers * 4 * heads * head_dim * sum over sequences of L(L+1)/2   causal attention
//   (QK^T and PV are 2*heads*head_dim flops per query-key pair each; backward is twice forward).
import { Model, packSequences, type Qwen3Config } from '../src/engine/model.js';
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
export const quick: Qwen3Config = { ...full, vocabSize: 8192, hiddenSize: 128, intermediateSize: 384, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 32 };

export function modelFlops(c: Qwen3Config, seqLens: number[]): number {
  const T = seqLens.reduce((a, b) => a + b, 0);
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const perLayer = c.hiddenSize * (2 * q + 2 * kv) + 3 * c.hiddenSize * c.intermediateSize;
  const matrixParams = c.numLayers * perLayer + c.vocabSize * c.hiddenSize;
  const pairs = seqLens.reduce((a, L) => a + (L * (L + 1)) / 2, 0);
  return 6 * T * matrixParams + 3 * c.numLayers * 4 * q * pairs;
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
    await step(); // warm-up: allocates the workspace and optimizer state
    const runs = [];
    for (let i = 0; i < (ctx.quick ? 1 : 2); i++) runs.push(await step());
    const best = runs.reduce((a, b) => (b.total < a.total ? b : a));
    const flops = modelFlops(c, seqLens);
    const achieved = flops / (best.total / 1000) / 1e9;
    const shape = `${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${T} tokens, ${(model.numParameters / 1e6).toFixed(1)}M params`;
    ctx.log(`train_step: ${shape}: forward ${best.forward.toFixed(0)} ms, backward ${best.backward.toFixed(0)} ms, optimizer ${best.optimizer.toFixed(0)} ms`);
    const records: BenchRecord[] = [
      { name: 'train_step', metric: 'tokens_per_s', value: T / (best.total / 1000), unit: 'tokens/s', note: shape },
      { name: 'train_step', metric: 'model_gflops', value: achieved, unit: 'GFLOP/s', note: shape },
      { name: 'train_step', metric: 'step_ms', value: best.total, unit: 'ms', note: shape },
    ];
    records.push(...utilisation(ctx, 'train_step', 'mfu', achieved, shape));
    return records;
  },
};

export default bench;
