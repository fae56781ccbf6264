// Decode throughput of the generation engine (KV cache, batched decode, native sampling at
// temperature 1) for a Qwen3-shaped model at batch 1 and batch 16, against the limits of this
// machine measured in the same run:
//   - memory: a decode step reads every weight once (the layers' matrices and the [V, H] head; the
//     embedding lookup reads one row per token), so tokens/s <= batch * bandwidth / weight bytes;
//   - compute: 2 flops per matrix parameter per token, so tokens/s <= sgemm peak / (2 * params)
//     (needs the gemm bench's peak in the same run).
// The limit of a batch is the lower of the two; the ratio record is decode tokens/s over it. The
// model shape is the train_step bench's (8 layers, hidden 512, vocab 151,936).
import { type Qwen3Config, Model } from '../src/engine/model.js';
import { readBandwidth } from '../src/engine/system.js';
import { Qwen3GenerationEngine } from '../src/generate/engine.js';
import { full, quick } from './train_step.bench.js';
import type { BenchContext, BenchModule, BenchRecord } from './types.js';

/** Matrix parameters read (and multiplied) per decoded token: every layer's projections and the head. */
function matrixParams(c: Qwen3Config): number {
  const q = c.numHeads * c.headDim;
  const kv = c.numKvHeads * c.headDim;
  return c.numLayers * (c.hiddenSize * (2 * q + 2 * kv) + 3 * c.hiddenSize * c.intermediateSize) + c.vocabSize * c.hiddenSize;
}

/** Decode tokens/s of one request with n samples: tokens after the first step over the time they took. */
async function decodeRate(engine: Qwen3GenerationEngine, n: number, newTokens: number, promptLength: number): Promise<number> {
  let first = 0;
  let last = 0;
  let decoded = 0;
  let firstStepTokens = 0;
  await engine.generate({
    promptIds: Array.from({ length: promptLength }, (_, i) => (i * 7919 + 13) % 8192),
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

const bench: BenchModule = {
  order: 30,
  async run(ctx: BenchContext): Promise<BenchRecord[]> {
    const c = ctx.quick ? quick : full;
    const newTokens = ctx.quick ? 8 : 24;
    const promptLength = 64;
    const model = Model.create(c, { seed: 1 });
    const engine = new Qwen3GenerationEngine(model, { maxCachedTokens: 16 * (promptLength + newTokens + 16) });
    const bandwidth = readBandwidth(ctx.quick ? 64 : 512, 3);
    const weightBytes = 4 * matrixParams(c);
    const computeLimit = ctx.peakGflops ? (ctx.peakGflops * 1e9) / (2 * matrixParams(c)) : Infinity;
    const shape = `${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${(weightBytes / 2 ** 20).toFixed(0)} MiB of matrices, prompt ${promptLength}`;
    ctx.log(`generate: ${shape}; read bandwidth ${(bandwidth / 1e9).toFixed(1)} GB/s`);
    await decodeRate(engine, 1, 4, promptLength); // warm-up: workspaces and cache pages
    const records: BenchRecord[] = [
      { name: 'generate', metric: 'read_bandwidth', value: bandwidth / 1e9, unit: 'GB/s', note: 'best of 3 parallel reads of a buffer larger than the caches' },
    ];
    for (const batch of [1, 16]) {
      const rate = await decodeRate(engine, batch, newTokens, promptLength);
      const memoryLimit = (batch * bandwidth) / weightBytes;
      const limit = Math.min(memoryLimit, computeLimit);
      const bound = limit === memoryLimit ? 'memory bandwidth' : 'sgemm peak';
      ctx.log(`batch ${batch}: ${rate.toFixed(1)} tokens/s; limit ${limit.toFixed(1)} tokens/s (${bound})`);
      records.push(
        { name: 'generate', metric: `decode_tokens_per_s_b${batch}`, value: rate, unit: 'tokens/s', note: `${shape}, temperature 1` },
        { name: 'generate', metric: `decode_limit_ratio_b${batch}`, value: rate / limit, unit: 'fraction', note: `against the ${bound} limit ${limit.toFixed(1)} tokens/s` },
      );
    }
    await engine.close();
    return records;
  },
};

export default bench;
