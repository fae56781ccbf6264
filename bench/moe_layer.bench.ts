// Mixture-of-experts training speed on the CPU: forward + backward of a stack of Qwen3-30B-A3B-shaped
// layers (hidden 2048, 32 heads of 128, 4 KV heads, 128 experts of 768, top-8; fewer layers, a small
// vocabulary, random weights) as tokens/s and MFU counted on the ACTIVE parameters; the share of the
// step spent routing (softmax, top-k, the sort by expert, gathers by expert, the combination back per
// token, forward and backward; the ops' own clock, moeRoutingSeconds); the same step in bf16 compute
// (bf16_speedup, f32 time over bf16 time); and the share of one sparse block's forward that is not
// expert or router GEMMs (routing and SwiGLU), measured by timing the same GEMMs alone.
//
// Model FLOPs per step, active parameters only (recomputation not counted):
//   6 * T * (attention matrices + router + top_k * 3 * hidden * moe_intermediate per layer + head)
// + 3 * layers * 4 * heads * head_dim * L(L+1)/2     causal attention, as in train_step.bench.ts
import { setComputeDtype } from '../src/engine/bf16.js';
import { Model, packSequences, type Qwen3Config } from '../src/engine/model.js';
import { moeBlockForward, moeRoutingSeconds } from '../src/engine/moe.js';
import { gemm } from '../src/engine/system.js';
import { utilisation } from './machine.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

const full: Qwen3Config = {
  vocabSize: 8192,
  hiddenSize: 2048,
  intermediateSize: 6144,
  numLayers: 1,
  numHeads: 32,
  numKvHeads: 4,
  headDim: 128,
  ropeTheta: 1e6,
  rmsEps: 1e-6,
  tieEmbeddings: true,
  numExperts: 128,
  numExpertsPerTok: 8,
  moeIntermediateSize: 768,
  decoderSparseStep: 1,
  normTopkProb: true,
  routerAuxLossCoef: 0.001,
};
const quick: Qwen3Config = {
  ...full,
  hiddenSize: 256,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 64,
  numExperts: 16,
  numExpertsPerTok: 4,
  moeIntermediateSize: 96,
  numLayers: 2,
};

function activeFlops(c: Qwen3Config, T: number): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  const perLayer =
    c.hiddenSize * (2 * q + 2 * kv) +
    c.numExperts! * c.hiddenSize +
    c.numExpertsPerTok! * 3 * c.hiddenSize * c.moeIntermediateSize!;
  return 6 * T * (c.numLayers * perLayer + c.vocabSize * c.hiddenSize) + 3 * c.numLayers * 4 * q * ((T * (T + 1)) / 2);
}

// Seconds of the router GEMM and each expert's three GEMMs over its tokens, as the block runs them.
function gemmSeconds(c: Qwen3Config, T: number, offsets: Int32Array): number {
  const H = c.hiddenSize,
    I = c.moeIntermediateSize!,
    E = c.numExperts!;
  const maxRows = Math.max(...Array.from({ length: E }, (_, e) => offsets[e + 1] - offsets[e]), T);
  const x = new Float32Array(maxRows * Math.max(H, I)).fill(0.01);
  const w = new Float32Array(2 * I * H).fill(0.01);
  const y = new Float32Array(maxRows * Math.max(H, 2 * I, E));
  const t0 = performance.now();
  gemm({ transB: true, M: T, N: E, K: H, A: x, B: w, C: y });
  for (let e = 0; e < E; e++) {
    const rows = offsets[e + 1] - offsets[e];
    if (!rows) continue;
    gemm({ transB: true, M: rows, N: I, K: H, A: x, B: w, C: y });
    gemm({ transB: true, M: rows, N: I, K: H, A: x, B: w, C: y });
    gemm({ transB: true, M: rows, N: H, K: I, A: x, B: w, C: y });
  }
  return (performance.now() - t0) / 1000;
}

const bench: BenchModule = {
  order: 12,
  async run(ctx: BenchContext): Promise<BenchRecord[]> {
    const c = ctx.quick ? quick : full;
    const T = ctx.quick ? 256 : 2048;
    const tokens = Array.from({ length: T }, (_, i) => (i * 7919) % c.vocabSize);
    const batch = packSequences([tokens]);
    const model = Model.create(c, { seed: 1 });
    model.setAuxLossWeight(c.routerAuxLossCoef!);
    const dlogp = new Float32Array(T).fill(-1 / T);
    const step = async () => {
      moeRoutingSeconds();
      const t0 = performance.now();
      await model.forward(batch, { training: true });
      model.zeroGrad();
      await model.backward({ dlogp });
      return { ms: performance.now() - t0, routingS: moeRoutingSeconds() };
    };
    await step(); // warm-up: workspace and gradient buffers
    const runs = [await step(), ...(ctx.quick ? [] : [await step()])];
    const { ms, routingS } = runs.reduce((a, b) => (b.ms < a.ms ? b : a));
    const gflops = activeFlops(c, T) / (ms / 1000) / 1e9;
    const shape = `${c.numLayers} layer(s), hidden ${c.hiddenSize}, ${c.numExperts} experts of ${c.moeIntermediateSize} top-${c.numExpertsPerTok}, ${T} tokens`;
    ctx.log(
      `moe_layer: ${shape}: forward+backward ${ms.toFixed(0)} ms, of which routing ${(routingS * 1000).toFixed(0)} ms`,
    );
    // The same step with the bf16 compute copy: the router and the experts read bf16 weights, as the
    // attention projections do (f32 activations and sums on the CPU).
    setComputeDtype(model, 'bf16');
    await step(); // warm-up: the copy is made at the first product
    const bf16Runs = [await step(), ...(ctx.quick ? [] : [await step()])];
    const bf16Ms = Math.min(...bf16Runs.map((r) => r.ms));
    setComputeDtype(model, 'f32');
    ctx.log(`moe_layer bf16: forward+backward ${bf16Ms.toFixed(0)} ms (${(ms / bf16Ms).toFixed(2)}x the f32 step)`);

    // One sparse block's forward against its GEMMs alone (same token counts per expert).
    const H = c.hiddenSize,
      I = c.moeIntermediateSize!,
      E = c.numExperts!;
    const x = model.getParameter('model.embed_tokens.weight').subarray(0, T * H);
    const router = model.getParameter('model.layers.0.mlp.gate.weight');
    const gateUp = model.getParameter('model.layers.0.mlp.experts.gate_up_proj');
    const down = model.getParameter('model.layers.0.mlp.experts.down_proj');
    const o = { tokens: T, hidden: H, intermediate: I, experts: E, topK: c.numExpertsPerTok!, normTopk: true };
    moeBlockForward(x, router, gateUp, down, o);
    const b0 = performance.now();
    const { offsets } = moeBlockForward(x, router, gateUp, down, o);
    const blockS = (performance.now() - b0) / 1000;
    const gemmS = gemmSeconds(c, T, offsets);
    const share = Math.max(0, 1 - gemmS / blockS);
    ctx.log(
      `moe_layer: sparse block forward ${(blockS * 1000).toFixed(1)} ms, its GEMMs alone ${(gemmS * 1000).toFixed(1)} ms`,
    );
    const records: BenchRecord[] = [
      {
        name: 'moe_layer',
        metric: 'tokens_per_s',
        value: T / (ms / 1000),
        unit: 'tokens/s',
        note: `forward+backward, ${shape}`,
      },
      { name: 'moe_layer', metric: 'active_gflops', value: gflops, unit: 'GFLOP/s', note: shape },
      { name: 'moe_layer', metric: 'step_ms_bf16', value: bf16Ms, unit: 'ms', note: `${shape}, bf16 compute` },
      {
        name: 'moe_layer',
        metric: 'bf16_speedup',
        value: ms / bf16Ms,
        unit: 'x',
        note: 'f32 step time over the bf16 compute step time, same run (f32 master weights and gradients)',
      },
      {
        name: 'moe_layer',
        metric: 'routing_step_share',
        value: routingS / (ms / 1000),
        unit: 'fraction',
        note: 'of the forward+backward step spent routing: softmax, top-k, sort by expert, gathers, combination per token',
      },
      {
        name: 'moe_layer',
        metric: 'routing_share',
        value: share,
        unit: 'fraction',
        note: 'of one sparse block forward outside its GEMMs (routing, sort, gather, combine, SwiGLU)',
      },
    ];
    records.push(...utilisation(ctx, 'moe_layer', 'mfu_active', gflops, 'active parameters'));
    return records;
  },
};

export default bench;
