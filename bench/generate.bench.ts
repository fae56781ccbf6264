// Generation throughput of the engine (KV cache, batched decode, native sampling at temperature 1)
// for a Qwen3-shaped model, against the limits of this machine measured in the same run:
//   - decode at batch 1, 8, 32, 128 (one request with n samples sharing the prefill). A decode step
//     reads every weight once (the layers' matrices and the [V, H] head; the embedding lookup reads
//     one row per token), so tokens/s <= batch * bandwidth / weight bytes; and it does 2 flops per
//     matrix parameter per token, so tokens/s <= best sgemm / (2 * params) (needs the gemm bench in
//     the same run: `--only gemm,generate`). The ratio record is tokens/s over the lower limit.
//   - prefill of one prompt, as tokens/s and model FLOP utilisation against the FMA peak (and the
//     best sgemm): 2 flops
//     per layer matrix parameter per token, causal attention (QK^T and PV, 4 * heads * head_dim
//     flops per query-key pair per layer) and the head for the one row whose next token is drawn.
// The model shape is the train_step bench's (8 layers, hidden 512, vocab 151,936).
import { type Qwen3Config, Model } from '../src/engine/model.js';
import { readBandwidth } from '../src/engine/system.js';
import { Qwen3GenerationEngine } from '../src/generate/engine.js';
import { full, quick } from './train_step.bench.js';
import { utilisation } from './machine.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

/** Matrix parameters of the layers (q, k, v, o, gate, up, down), without the head. */
function layerMatrixParams(c: Qwen3Config): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  return c.numLayers * (c.hiddenSize * (2 * q + 2 * kv) + 3 * c.hiddenSize * c.intermediateSize);
}

/** Matrix parameters read (and multiplied) per decoded token: every layer's projections and the head. */
function matrixParams(c: Qwen3Config): number {
  return layerMatrixParams(c) + c.vocabSize * c.hiddenSize;
}

/** Forward FLOPs of a prefill of one prompt of L tokens that draws one next token. */
function prefillFlops(c: Qwen3Config, L: number): number {
  const attention = 4 * c.numLayers * c.numHeads * c.headDim * ((L * (L + 1)) / 2);
  return 2 * L * layerMatrixParams(c) + attention + 2 * c.vocabSize * c.hiddenSize;
}

function promptIds(length: number, seed: number): number[] {
  return Array.from({ length }, (_, i) => (i * 7919 + seed * 104729 + 13) % 8192);
}

/** Decode tokens/s of one request with n samples: tokens after the first step over the time they took. */
async function decodeRate(
  engine: Qwen3GenerationEngine,
  n: number,
  newTokens: number,
  promptLength: number,
): Promise<number> {
  let first = 0;
  let last = 0;
  let decoded = 0;
  let firstStepTokens = 0;
  await engine.generate({
    promptIds: promptIds(promptLength, n),
    params: { n, maxNewTokens: newTokens, temperature: 1, seed: 1, ignoreEos: true },
    onToken: () => {
      const now = performance.now();
      if (firstStepTokens < n) {
        // The prefill step's tokens: the clock starts when the last of them arrives.
        firstStepTokens++;
        first = now;
      } else {
        decoded++;
        last = now;
      }
    },
  });
  return decoded / ((last - first) / 1000);
}

/** Seconds from submitting a prompt to its first token: the prefill step. */
async function prefillSeconds(engine: Qwen3GenerationEngine, length: number, seed: number): Promise<number> {
  const t0 = performance.now();
  await engine.generate({
    promptIds: promptIds(length, seed),
    params: { maxNewTokens: 1, temperature: 1, seed: 1, ignoreEos: true },
  });
  return (performance.now() - t0) / 1000;
}

const bench: BenchModule = {
  order: 30,
  async run(ctx: BenchContext): Promise<BenchRecord[]> {
    const c = ctx.quick ? quick : full;
    const batches = ctx.quick ? [1, 8] : [1, 8, 32, 128];
    const newTokens = ctx.quick ? 6 : 16;
    const promptLength = 64;
    const prefillLength = ctx.quick ? 128 : 512;
    const model = Model.create(c, { seed: 1 });
    const maxBatch = Math.max(...batches);
    const engine = new Qwen3GenerationEngine(model, {
      maxBatchSize: maxBatch,
      maxCachedTokens: Math.max(maxBatch * (promptLength + newTokens + 32), 2 * prefillLength),
    });
    const bandwidth = readBandwidth(ctx.quick ? 64 : 512, 3);
    const weightBytes = 4 * matrixParams(c);
    const computeLimit = ctx.sgemmGflops ? (ctx.sgemmGflops * 1e9) / (2 * matrixParams(c)) : Infinity;
    const shape = `${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${(weightBytes / 2 ** 20).toFixed(0)} MiB of matrices`;
    ctx.log(`generate: ${shape}, prompt ${promptLength}; read bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s`);
    if (!ctx.sgemmGflops)
      ctx.log('no sgemm measured in this run (add the gemm bench): decode limits are bandwidth only');
    await decodeRate(engine, 1, 4, promptLength); // warm-up: workspaces and cache pages
    const records: BenchRecord[] = [
      {
        name: 'generate',
        metric: 'read_bandwidth',
        value: bandwidth / 1e9,
        unit: 'GB/s',
        note: 'best of 3 parallel reads of a buffer larger than the caches',
      },
    ];
    for (const batch of batches) {
      // Best of two runs: the machine may be shared, and a slow run says more about it than about the engine.
      const rate = Math.max(
        await decodeRate(engine, batch, newTokens, promptLength),
        await decodeRate(engine, batch, newTokens, promptLength),
      );
      const memoryLimit = (batch * bandwidth) / weightBytes;
      const limit = Math.min(memoryLimit, computeLimit);
      const bound = limit === memoryLimit ? 'memory bandwidth' : 'best sgemm';
      ctx.log(`decode batch ${batch}: ${rate.toFixed(1)} tokens/s; limit ${limit.toFixed(1)} tokens/s (${bound})`);
      records.push(
        {
          name: 'generate',
          metric: `decode_tokens_per_s_b${batch}`,
          value: rate,
          unit: 'tokens/s',
          note: `${shape}, prompt ${promptLength}, temperature 1`,
        },
        {
          name: 'generate',
          metric: `decode_limit_ratio_b${batch}`,
          value: rate / limit,
          unit: 'fraction',
          note: `against the ${bound} limit ${limit.toFixed(1)} tokens/s`,
        },
      );
    }
    await prefillSeconds(engine, prefillLength, 0); // warm-up at this length
    const seconds = Math.min(
      await prefillSeconds(engine, prefillLength, 1),
      await prefillSeconds(engine, prefillLength, 2),
    );
    const prefillGflops = prefillFlops(c, prefillLength) / seconds / 1e9;
    const note = `${shape}, one prompt of ${prefillLength} tokens`;
    ctx.log(`prefill: ${(prefillLength / seconds).toFixed(0)} tokens/s, ${prefillGflops.toFixed(1)} GFLOP/s`);
    records.push({
      name: 'generate',
      metric: 'prefill_tokens_per_s',
      value: prefillLength / seconds,
      unit: 'tokens/s',
      note,
    });
    records.push(...utilisation(ctx, 'generate', 'prefill_mfu', prefillGflops, note));
    await engine.close();
    return records;
  },
};

export default bench;
