// Rollout experience as the update step consumes it: prompt + response token ids per sample, and
// per-response-token advantages and log-probs of the behaviour and reference policies.
// Packing puts whole samples back to back (no padding); the log-prob of response token j sits at
// packed position promptLen - 1 + j, because position t predicts token t + 1.
// Qwen3-VL samples carry their prompt's images: a packed batch stacks them in sample order and numbers
// each sample's tokens on its own with get_rope_index's (t, h, w) positions.
import type { PackedBatch, Qwen3Config } from '../engine/model.js';
import { stackImages, type ProcessedImage } from '../model/vision/image-processor.js';
import { packedMultimodalPositions, type RopeIndexOptions } from '../model/vision/rope-index.js';

export interface Experience {
  promptIds: number[];
  responseIds: number[];
  /**
   * Qwen3-VL: the prompt's images in the order of its image-token runs, preprocessed once per row so
   * that rollouts, old and reference log-probs and the update all see the same pixels.
   */
  images?: readonly ProcessedImage[];
  /** Advantage of each response token (outcome estimators broadcast one value; src/rl). */
  advantages?: Float32Array;
  /** Behaviour-policy log-probs of the response tokens (filled by computeLogprobs when absent). */
  oldLogp?: Float32Array;
  /** Reference-policy log-probs of the response tokens (for the KL loss). */
  refLogp?: Float32Array;
}

export interface PackedExperience {
  batch: PackedBatch;
  /** 1 at positions whose target is a response token. */
  mask: Float32Array;
  /** Packed position of each sample's first response log-prob. */
  starts: number[];
}

/** Where a model's image tokens are and how its tower merges patches; null for a model without a vision tower. */
export function ropeIndexOptionsOf(c: Readonly<Qwen3Config>): RopeIndexOptions | null {
  return c.vision && c.imageTokenId !== undefined
    ? { imageTokenId: c.imageTokenId, merge: c.vision.spatialMergeSize }
    : null;
}

/**
 * Packs whole samples back to back; with `vision` (a Qwen3-VL model) also their images, in sample
 * order, and per-sample multimodal positions.
 */
export function packExperience(exps: readonly Experience[], vision: RopeIndexOptions | null = null): PackedExperience {
  const T = exps.reduce((n, e) => n + e.promptIds.length + e.responseIds.length, 0);
  const tokens = new Int32Array(T);
  const targets = new Int32Array(T).fill(-1);
  const mask = new Float32Array(T);
  const cuSeqlens = new Int32Array(exps.length + 1);
  const starts: number[] = [];
  let off = 0;
  exps.forEach((e, s) => {
    if (e.promptIds.length === 0)
      throw new Error(`experience ${s}: the prompt is empty (a response needs a prompt token to be predicted from)`);
    const seq = [...e.promptIds, ...e.responseIds];
    tokens.set(seq, off);
    // Targets only where a response token is predicted: the loss reads nothing else, and the model
    // runs its vocabulary head only on rows with a target.
    const start = off + e.promptIds.length - 1;
    targets.set(e.responseIds, start);
    mask.fill(1, start, start + e.responseIds.length);
    starts.push(start);
    off += seq.length;
    cuSeqlens[s + 1] = off;
  });
  const batch: PackedBatch = { tokens, cuSeqlens, targets };
  if (vision) return { batch: withImages(batch, exps, vision), mask, starts };
  const withImage = exps.findIndex((e) => (e.images?.length ?? 0) > 0);
  if (withImage >= 0) throw new Error(`experience ${withImage}: it has images but the model has no vision tower`);
  return { batch, mask, starts };
}

function withImages(batch: PackedBatch, exps: readonly Experience[], vision: RopeIndexOptions): PackedBatch {
  const { grids, pixels } = stackImages(exps.flatMap((e) => e.images ?? []));
  const positions = packedMultimodalPositions(batch.tokens, batch.cuSeqlens, grids, vision);
  return grids.length > 0 ? { ...batch, positions, imageGrids: grids, pixels } : { ...batch, positions };
}

/** Scatters per-sample response values into packed positions (0 elsewhere). */
export function scatterResponse(
  packed: PackedExperience,
  exps: readonly Experience[],
  pick: (e: Experience) => ArrayLike<number>,
): Float32Array {
  const out = new Float32Array(packed.mask.length);
  exps.forEach((e, s) => {
    const v = pick(e);
    if (v.length !== e.responseIds.length)
      throw new Error(`experience ${s}: ${v.length} values for ${e.responseIds.length} response tokens`);
    for (let j = 0; j < v.length; j++) out[packed.starts[s] + j] = v[j];
  });
  return out;
}

/** Gathers packed per-position values back into one array per sample's response. */
export function gatherResponse(
  packed: PackedExperience,
  exps: readonly Experience[],
  values: Float32Array,
): Float32Array[] {
  return exps.map((e, s) => values.slice(packed.starts[s], packed.starts[s] + e.responseIds.length));
}
