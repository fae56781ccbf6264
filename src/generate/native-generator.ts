// Typed face of the native generation code (native/bindings/generate.cc): the KV cache with its
// step (cached forward + sampling), and the sampler on its own. The engine (engine.ts) is the only
// user of the generator; the sampler functions serve tests and tools.
import type { ComputeDtype } from '../engine/compute-dtype.js';
import { type Model, nativeModelHandle } from '../engine/model.js';
import { native } from '../engine/native.js';
import type { OpBackend } from '../engine/ops.js';

/** Per-row sampler settings as the native sampler takes them (see native/ops/sampling.h). */
export interface NativeSamplerParams {
  /** Below 1e-6 (0 included): greedy. */
  temperature: number;
  /** <= 0: off. */
  topK?: number;
  topP?: number;
  minP?: number;
  repetitionPenalty?: number;
  /** Integer in [0, 2^53]. */
  seed?: number;
  /** The sample's index in its request: its own random stream. */
  stream?: number;
  /** Tokens the sample drew before this one: the position in its stream. */
  counter?: number;
}

export interface GeneratorStats {
  sequences: number;
  blocksTotal: number;
  blocksFree: number;
  /** Sequences made by sharing another's cache blocks (n samples of a prompt). */
  forks: number;
  /** Shared, partly filled blocks copied before a sample wrote to them. */
  blockCopies: number;
  /** The dtype K and V are stored in: the model's compute dtype when the generator was made. */
  cacheDtype: ComputeDtype;
  /** K and V of every layer, allocated once. */
  cacheBytes: number;
  steps: number;
  /** Tokens run through the model (prompt tokens plus one per decoded token). */
  tokensComputed: number;
  tokensSampled: number;
}

export interface GeneratorStep {
  /** New tokens of every sequence in the step, packed back to back. */
  tokens: Int32Array;
  /** Cache id of each sequence, in packing order. */
  seqIds: number[];
  cuSeqlens: Int32Array;
  /** Rotary positions [P, T]; default the cache index of each token. */
  positions?: Int32Array;
  /** Tokens (indices into `tokens`) whose next token is drawn; may repeat (n samples of one prompt). */
  logitRows: Int32Array;
  /** One per logit row. */
  sampling: NativeSamplerParams[];
  /**
   * Qwen3-VL images of the step's prompts: (t, h, w) per image, their pixel rows, and the tokens
   * (indices into `tokens`, ascending, each an image token) that take the vision tower's outputs.
   */
  images?: { grids: Int32Array; pixels: Float32Array; rows: Int32Array };
}

export interface NativeGenerator {
  addSequence(): number;
  /** A new sequence sharing every cached token of `seq`. */
  fork(seq: number): number;
  free(seq: number): void;
  length(seq: number): number;
  stats(): GeneratorStats;
  step(step: GeneratorStep): Promise<{ tokens: Int32Array; logprobs: Float32Array }>;
  close(): void;
}

interface GenerateAddon {
  Qwen3Generator: new (model: unknown, options: { blockSize: number; numBlocks: number }) => NativeGenerator;
  sampleLogits(
    logits: Float32Array,
    vocab: number,
    sampling: NativeSamplerParams[],
    histories?: Int32Array[],
    backend?: OpBackend,
  ): { tokens: Int32Array; logprobs: Float32Array };
  samplingDistribution(
    logits: Float32Array,
    sampling: NativeSamplerParams,
    history?: Int32Array,
  ): { ids: Int32Array; probs: Float64Array };
}

/** A KV cache of numBlocks blocks of blockSize tokens for `model`. */
export function createNativeGenerator(model: Model, blockSize: number, numBlocks: number): NativeGenerator {
  return new (native<GenerateAddon>().Qwen3Generator)(nativeModelHandle(model), { blockSize, numBlocks });
}

/**
 * Draws one token per row of `logits` ([rows, vocab]) with the native sampler of `backend` (the
 * generation engine's, Backend::sample): the token and its log-prob under softmax(logits / temperature)
 * before penalties and truncation.
 */
export function sampleLogits(
  logits: Float32Array,
  vocab: number,
  sampling: NativeSamplerParams[],
  histories?: Int32Array[],
  backend: OpBackend = 'cpu',
): { tokens: Int32Array; logprobs: Float32Array } {
  return native<GenerateAddon>().sampleLogits(logits, vocab, sampling, histories, backend);
}

/** The kept token ids (ascending) and the probabilities the sampler draws them with, for one row. */
export function samplingDistribution(
  logits: Float32Array,
  sampling: NativeSamplerParams,
  history?: Int32Array,
): { ids: Int32Array; probs: Float64Array } {
  return native<GenerateAddon>().samplingDistribution(logits, sampling, history);
}
