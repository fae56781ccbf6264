// Rollout experience as the update step consumes it: prompt + response token ids per sample, and
// per-response-token advantages and log-probs of the behaviour and reference policies.
// Packing puts whole samples back to back (no padding); the log-prob of response token j sits at
// packed position promptLen - 1 + j, because position t predicts token t + 1.
import type { PackedBatch } from '../engine/model.js';

export interface Experience {
  promptIds: number[];
  responseIds: number[];
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

export function packExperience(exps: readonly Experience[]): PackedExperience {
  const T = exps.reduce((n, e) => n + e.promptIds.length + e.responseIds.length, 0);
  const tokens = new Int32Array(T);
  const targets = new Int32Array(T).fill(-1);
  const mask = new Float32Array(T);
  const cuSeqlens = new Int32Array(exps.length + 1);
  const starts: number[] = [];
  let off = 0;
  exps.forEach((e, s) => {
    if (e.promptIds.length === 0) throw new Error(`experience ${s}: the prompt is empty (a response needs a prompt token to be predicted from)`);
    const seq = [...e.promptIds, ...e.responseIds];
    tokens.set(seq, off);
    for (let i = 0; i + 1 < seq.length; i++) targets[off + i] = seq[i + 1];
    const start = off + e.promptIds.length - 1;
    mask.fill(1, start, start + e.responseIds.length);
    starts.push(start);
    off += seq.length;
    cuSeqlens[s + 1] = off;
  });
  return { batch: { tokens, cuSeqlens, targets }, mask, starts };
}

/** Scatters per-sample response values into packed positions (0 elsewhere). */
export function scatterResponse(packed: PackedExperience, exps: readonly Experience[], pick: (e: Experience) => ArrayLike<number>): Float32Array {
  const out = new Float32Array(packed.mask.length);
  exps.forEach((e, s) => {
    const v = pick(e);
    if (v.length !== e.responseIds.length) throw new Error(`experience ${s}: ${v.length} values for ${e.responseIds.length} response tokens`);
    for (let j = 0; j < v.length; j++) out[packed.starts[s] + j] = v[j];
  });
  return out;
}

/** Gathers packed per-position values back into one array per sample's response. */
export function gatherResponse(packed: PackedExperience, exps: readonly Experience[], values: Float32Array): Float32Array[] {
  return exps.map((e, s) => values.slice(packed.starts[s], packed.starts[s] + e.responseIds.length));
}
