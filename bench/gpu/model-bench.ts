// The GPU model benchmark (issue 14; `npm run bench -- --device cuda`): medix against Hugging Face
// transformers on the same GPU, with the same random Qwen3-1.7B-shaped model.
//   train   one step (forward to per-token log-probs, backward, clipped AdamW) over SEQS packed sequences
//           of SEQ_LEN tokens: bf16 compute copy, fp32 master weights, gradients and moments, recompute.
//           Records gpu_train_step/hf_speedup (transformers' step time over medix's) and the MFU of both
//           against the bf16 GEMM peak PyTorch measured in the baseline's run.
//   decode  tokens/s at batch 1, 32, 128 after the prefill (generate.bench.ts's decodeRate: one request
//           with n samples, temperature 1), bf16 weights and KV cache. Records gpu_decode/hf_speedup_bB, and
//           at batch 1 the bandwidth achieved (weights and KV bytes per token x tokens/s) over the measured
//           device copy bandwidth.
// The baseline is scripts/device/hf_model_bench.py's JSON line (`--hf FILE`); its shapes must be these.
import fs from 'node:fs';

import { setComputeDtype } from '../../src/engine/bf16.js';
import type { ComputeDtype } from '../../src/engine/compute-dtype.js';
import { requireDevice } from '../../src/engine/device.js';
import { Model, packSequences, type Qwen3Config } from '../../src/engine/model.js';
import { Qwen3GenerationEngine } from '../../src/generate/engine.js';
import { qwen3HfConfig } from '../../src/model/hf-config-write.js';
import type { Device } from '../../src/config/schema.js';
import { decodeRate, kvBytesPerToken, matrixParams } from '../generate.bench.js';
import { modelFlops, quick as quickConfig } from '../train_step.bench.js';
import type { BenchRecord } from '../types.js';

/** Qwen3-1.7B's shape (its config.json); scripts/device/hf_model_bench.py builds the same model. */
export const QWEN3_1_7B: Qwen3Config = {
  vocabSize: 151936,
  hiddenSize: 2048,
  intermediateSize: 6144,
  numLayers: 28,
  numHeads: 16,
  numKvHeads: 8,
  headDim: 128,
  ropeTheta: 1e6,
  rmsEps: 1e-6,
  tieEmbeddings: true,
};

export interface ModelBenchShape {
  config: Qwen3Config;
  seqs: number;
  seqLen: number;
  batches: number[];
  prompt: number;
  newTokens: number;
  /** Timed train steps after the warm-up; the fastest is kept. */
  reps: number;
}

/** The shapes: ~16k packed tokens, decode at batch 1/32/128 (hf_model_bench.py's defaults). */
export const FULL_SHAPE: ModelBenchShape = {
  config: QWEN3_1_7B,
  seqs: 4,
  seqLen: 4096,
  batches: [1, 32, 128],
  prompt: 64,
  newTokens: 128,
  // One timed step after the warm-up: a GPU step varies little, and a step at this size takes seconds
  // (tens with MEDIX_CUDA_LINEAR=tiled); gpu-model-bench.sh gives medix 300 s in all.
  reps: 1,
};

/** Small enough for the CPU: the test that keeps this file working runs it there. */
export const QUICK_SHAPE: ModelBenchShape = {
  config: quickConfig,
  seqs: 2,
  seqLen: 48,
  batches: [1, 4],
  prompt: 16,
  newTokens: 6,
  reps: 1,
};

export interface MedixModelResult {
  device: Device;
  /** The compute dtype (and KV cache dtype) measured: bf16 unless MEDIX_BENCH_DTYPE=f32. */
  dtype: ComputeDtype;
  params: number;
  train: { stepMs: number; forwardMs: number; backwardMs: number; optimizerMs: number };
  decode: { batch: number; tokensPerS: number }[];
}

/** The part of scripts/device/hf_model_bench.py's JSON line this file reads. */
export interface HfModelResult {
  bench: 'hf_model';
  device: string;
  torch: string;
  transformers: string;
  config: Record<string, number | boolean>;
  peak: { bf16_gemm_tflops: number; copy_gb_per_s: number };
  train?: { seqs: number; seq_len: number; step_ms: number; peak_bytes: number } | { error: string };
  decode?:
    | { prompt: number; new: number; compile: string; results: { batch: number; tokens_per_s: number }[] }
    | { error: string };
}

/** medix's side: a train step (best of `reps` after a warm-up), then decode at each batch size. */
export async function measureMedix(
  device: Device,
  shape: ModelBenchShape,
  log: (line: string) => void,
): Promise<MedixModelResult> {
  requireDevice(device, 'bench --device');
  const c = shape.config;
  const model = Model.create(c, { seed: 1, device, recompute: true });
  // bf16 compute on both backends (the CUDA one's products on cuBLASLt round the activations to bf16
  // too, as transformers' autocast does); MEDIX_BENCH_DTYPE=f32 measures the fp32 path instead.
  const dtype: ComputeDtype = process.env.MEDIX_BENCH_DTYPE === 'f32' ? 'f32' : 'bf16';
  setComputeDtype(model, dtype);
  const seqs = Array.from({ length: shape.seqs }, (_, s) =>
    Array.from({ length: shape.seqLen }, (_, i) => (i * 7919 + s * 104729 + 13) % c.vocabSize),
  );
  const batch = packSequences(seqs);
  const step = async () => {
    const t0 = performance.now();
    const f = await model.forward(batch, { training: true });
    const t1 = performance.now();
    model.zeroGrad();
    await model.backward({ dlogp: new Float32Array(f.logp.length).fill(-1 / f.logp.length) });
    const t2 = performance.now();
    await model.optimizerStep({ lr: 1e-6, maxGradNorm: 1 });
    const t3 = performance.now();
    return { stepMs: t3 - t0, forwardMs: t1 - t0, backwardMs: t2 - t1, optimizerMs: t3 - t2 };
  };
  await step(); // warm-up: workspaces, the optimizer state, the bf16 copy (on the CPU)
  let train = await step();
  for (let i = 1; i < shape.reps; i++) {
    const s = await step();
    if (s.stepMs < train.stepMs) train = s;
  }
  log(
    `medix train step: ${train.stepMs.toFixed(1)} ms (forward ${train.forwardMs.toFixed(1)}, backward ` +
      `${train.backwardMs.toFixed(1)}, optimizer ${train.optimizerMs.toFixed(1)})`,
  );
  const maxBatch = Math.max(...shape.batches);
  const engine = new Qwen3GenerationEngine(model, {
    maxBatchSize: maxBatch,
    maxCachedTokens: maxBatch * (shape.prompt + shape.newTokens + 32),
  });
  const decode = [];
  try {
    await decodeRate(engine, 1, 4, shape.prompt); // warm-up: decode workspaces and cache pages
    for (const b of shape.batches) {
      const rate = Math.max(
        await decodeRate(engine, b, shape.newTokens, shape.prompt),
        await decodeRate(engine, b, shape.newTokens, shape.prompt),
      );
      log(`medix decode batch ${b}: ${rate.toFixed(1)} tokens/s`);
      decode.push({ batch: b, tokensPerS: rate });
    }
  } finally {
    await engine.close();
  }
  return { device, dtype, params: model.numParameters, train, decode };
}

/** The config.json fields that fix the model's shape: the baseline's must equal ours. */
export const SHAPE_FIELDS = [
  'vocab_size',
  'hidden_size',
  'intermediate_size',
  'num_hidden_layers',
  'num_attention_heads',
  'num_key_value_heads',
  'head_dim',
] as const;

/** The baseline's JSON line (the file's last non-empty line), checked against the shapes measured here. */
export function readHfResult(file: string, shape: ModelBenchShape): HfModelResult {
  const lines = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim());
  if (!lines.length) throw new Error(`${file}: empty (did scripts/device/hf_model_bench.py run?)`);
  let hf: HfModelResult;
  try {
    hf = JSON.parse(lines[lines.length - 1]) as HfModelResult;
  } catch (e) {
    throw new Error(`${file}: the last line is not JSON (${(e as Error).message})`);
  }
  if (hf.bench !== 'hf_model') throw new Error(`${file}: not hf_model_bench.py's output (bench: ${hf.bench})`);
  const want = qwen3HfConfig(shape.config, 'bf16');
  const expect: [string, unknown, unknown][] = SHAPE_FIELDS.map((f) => [`config.${f}`, hf.config?.[f], want[f]]);
  if (hf.train && !('error' in hf.train))
    expect.push(['train.seqs', hf.train.seqs, shape.seqs], ['train.seq_len', hf.train.seq_len, shape.seqLen]);
  if (hf.decode && !('error' in hf.decode))
    expect.push(['decode.prompt', hf.decode.prompt, shape.prompt], ['decode.new', hf.decode.new, shape.newTokens]);
  for (const [field, got, want] of expect)
    if (got !== want) throw new Error(`${file}: ${field} is ${got}, this benchmark runs ${want}`);
  return hf;
}

/** Records of medix's run, and its ratios to the baseline where one is given and its part ran. */
export function modelBenchRecords(
  medix: MedixModelResult,
  shape: ModelBenchShape,
  hf: HfModelResult | undefined,
): BenchRecord[] {
  const c = shape.config;
  const tokens = shape.seqs * shape.seqLen;
  const flops = modelFlops(c, Array(shape.seqs).fill(shape.seqLen));
  const model = `${c.numLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}, ${(medix.params / 1e9).toFixed(2)}B params`;
  const trainShape = `${model}, ${shape.seqs} x ${shape.seqLen} tokens, ${medix.dtype} compute, fp32 master weights`;
  const records: BenchRecord[] = [
    { name: 'gpu_train_step', metric: 'step_ms', value: medix.train.stepMs, unit: 'ms', note: trainShape },
    {
      name: 'gpu_train_step',
      metric: 'tokens_per_s',
      value: tokens / (medix.train.stepMs / 1e3),
      unit: 'tokens/s',
      note: trainShape,
    },
  ];
  if (hf) records.push({ name: 'gpu', metric: 'name', value: 0, unit: '', note: hf.device });
  const peak = hf?.peak.bf16_gemm_tflops;
  const mfu = (ms: number) => flops / (ms / 1e3) / (peak! * 1e12);
  const against = `against the bf16 GEMM peak ${peak?.toFixed(1)} TFLOP/s PyTorch measured (8192^3 matmul)`;
  if (peak)
    records.push({
      name: 'gpu_train_step',
      metric: 'mfu',
      value: mfu(medix.train.stepMs),
      unit: 'fraction',
      note: `${trainShape}; ${against}`,
    });
  const hfTrain = hf?.train && !('error' in hf.train) ? hf.train : undefined;
  if (hfTrain && peak) {
    const baseline = `transformers ${hf!.transformers} (sdpa, gradient checkpointing, fused AdamW, bf16 autocast)`;
    records.push(
      {
        name: 'gpu_train_step',
        metric: 'hf_speedup',
        value: hfTrain.step_ms / medix.train.stepMs,
        unit: 'x',
        note: `${trainShape}; ${baseline} ${hfTrain.step_ms.toFixed(1)} ms, medix ${medix.train.stepMs.toFixed(1)} ms`,
      },
      {
        name: 'gpu_train_step',
        metric: 'hf_mfu',
        value: mfu(hfTrain.step_ms),
        unit: 'fraction',
        note: `${baseline}; ${against}`,
      },
    );
  }
  const decodeShape = `${model}, prompt ${shape.prompt}, ${shape.newTokens} new tokens, ${medix.dtype} weights and KV cache`;
  const hfDecode = hf?.decode && !('error' in hf.decode) ? hf.decode : undefined;
  for (const d of medix.decode) {
    const b = d.batch;
    records.push({
      name: 'gpu_decode',
      metric: `tokens_per_s_b${b}`,
      value: d.tokensPerS,
      unit: 'tokens/s',
      note: decodeShape,
    });
    const theirs = hfDecode?.results.find((r) => r.batch === b);
    if (theirs)
      records.push({
        name: 'gpu_decode',
        metric: `hf_speedup_b${b}`,
        value: d.tokensPerS / theirs.tokens_per_s,
        unit: 'x',
        note:
          `${decodeShape}; transformers generate, static cache (compile ${hfDecode!.compile}) ` +
          `${theirs.tokens_per_s.toFixed(1)} tokens/s, medix ${d.tokensPerS.toFixed(1)}`,
      });
    if (b === 1 && hf) {
      const width = medix.dtype === 'bf16' ? 2 : 4;
      const bytes = width * matrixParams(c) + kvBytesPerToken(c, shape.prompt + shape.newTokens / 2, width);
      records.push({
        name: 'gpu_decode',
        metric: 'bandwidth_ratio_b1',
        value: (d.tokensPerS * bytes) / (hf.peak.copy_gb_per_s * 1e9),
        unit: 'fraction',
        note:
          `${decodeShape}; ${(bytes / 2 ** 20).toFixed(0)} MiB of ${medix.dtype} weights and KV read per token x tokens/s, ` +
          `against the device copy bandwidth ${hf.peak.copy_gb_per_s.toFixed(0)} GB/s PyTorch measured`,
      });
    }
  }
  return records;
}
