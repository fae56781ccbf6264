// The model and batch of the fsdp bench, shared by the bench (bench/fsdp.bench.ts) and its ranks.
import type { Qwen3Config } from '../src/engine/model.js';

export function fsdpBenchModel(quick: boolean): Qwen3Config {
  const shape = { numHeads: 4, numKvHeads: 2, ropeTheta: 1e6, rmsEps: 1e-6, tieEmbeddings: false };
  return quick
    ? { ...shape, vocabSize: 2048, hiddenSize: 64, intermediateSize: 192, numLayers: 2, headDim: 16 }
    : { ...shape, vocabSize: 16384, hiddenSize: 256, intermediateSize: 768, numLayers: 4, headDim: 64 };
}

/** Four sequences, so every rank of 1, 2 or 4 gets a share of the same global batch. */
export function benchBatch(quick: boolean): number[][] {
  const len = quick ? 16 : 128;
  return Array.from({ length: 4 }, (_, s) => Array.from({ length: len }, (_, i) => (s * 131 + i * 7919) % 2048));
}

export interface FsdpRankResult {
  stepMs: number;
  /** The largest over the ranks of shards + peak gathered units, bytes. */
  residentBytes: number;
  wholeStateBytes: number;
  largestUnitBytes: number;
  allgatherBytesPerStep: number;
  reduceScatterBytesPerStep: number;
  numParameters: number;
}
