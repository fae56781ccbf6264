// How per-token loss values become one number (EasyR1 core_algos' loss_agg_mode), over a packed
// batch: cuSeqlens delimits the sequences, mask selects the response tokens that count.
//
// Every mode is linear in the token values, result = Σ_t w_t·x_t, with weights that depend only on
// the mask, the sequence boundaries and the normalisers. So one weight vector serves the value (a
// dot product) and the gradient (d result / d x_t = w_t) of every term a loss aggregates.
import { checkChoice, checkNumber } from './loss-checks.js';

/**
 * token-mean: Σ mask·x / N_tok. seq-mean-token-mean: mean over sequences of each sequence's masked
 * mean. seq-mean-token-sum: mean over sequences of each sequence's masked sum.
 */
export type LossAgg = 'token-mean' | 'seq-mean-token-mean' | 'seq-mean-token-sum';
export const LOSS_AGG_MODES: readonly LossAgg[] = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum'];

export interface AggOptions {
  agg: LossAgg;
  /**
   * Token normaliser of token-mean when > 0 (default: this batch's masked-token count). Give the
   * whole mini-batch's count to every micro-batch and their losses and gradients add up to the
   * mini-batch's.
   */
  globalTokens?: number;
  /** Sequence normaliser of the seq-mean modes when > 0 (default: this batch's sequences with a masked-in token). */
  globalSeqs?: number;
}

/** The response tokens of a packed batch: mask[T] in {0, 1}, cuSeqlens[nSeqs + 1] offsets. */
export interface TokenBatch {
  mask: Float32Array;
  cuSeqlens: Int32Array;
}

/** The aggregation options, checked (the mode is required; the normalisers default to 0 and must be >= 0). */
export function checkAggOptions(fn: string, o: AggOptions): Required<AggOptions> {
  const nonNegative = (key: 'globalTokens' | 'globalSeqs') => {
    const x = checkNumber(fn, o, key, 0);
    if (x < 0) throw new RangeError(`${fn}: option '${key}' must be >= 0, got ${x}`);
    return x;
  };
  return {
    agg: checkChoice(fn, o, 'agg', LOSS_AGG_MODES),
    globalTokens: nonNegative('globalTokens'),
    globalSeqs: nonNegative('globalSeqs'),
  };
}

/**
 * w_t = d(aggregate)/d(x_t):
 *   token-mean            mask_t / N_tok
 *   seq-mean-token-mean   mask_t / (N_seq · Σ mask over t's sequence)
 *   seq-mean-token-sum    mask_t / N_seq
 * N_tok = globalTokens or this batch's mask sum; N_seq = globalSeqs or the number of sequences with
 * a masked-in token. Nothing masked in: all weights 0 (no division by 0).
 */
export function aggregationWeights(b: TokenBatch, o: AggOptions): Float64Array {
  const { mask, cuSeqlens: cu } = b;
  const w = new Float64Array(mask.length);
  if (o.agg === 'token-mean') {
    let n = 0;
    for (let t = 0; t < mask.length; t++) n += mask[t];
    if (o.globalTokens && o.globalTokens > 0) n = o.globalTokens;
    if (n > 0) for (let t = 0; t < mask.length; t++) w[t] = mask[t] / n;
    return w;
  }
  const seqMask = new Float64Array(cu.length - 1);
  let nSeq = 0;
  for (let i = 0; i + 1 < cu.length; i++) {
    for (let t = cu[i]; t < cu[i + 1]; t++) seqMask[i] += mask[t];
    if (seqMask[i] > 0) nSeq++;
  }
  if (o.globalSeqs && o.globalSeqs > 0) nSeq = o.globalSeqs;
  for (let i = 0; i + 1 < cu.length; i++) {
    if (!(seqMask[i] > 0)) continue;
    const perToken = o.agg === 'seq-mean-token-mean' ? 1 / (nSeq * seqMask[i]) : 1 / nSeq;
    for (let t = cu[i]; t < cu[i + 1]; t++) w[t] = mask[t] * perToken;
  }
  return w;
}

/** Σ_t w_t·x_t over the tokens with a weight: a masked-out token's value, whatever it holds, stays out. */
export function weightedSum(w: Float64Array, x: ArrayLike<number>): number {
  let s = 0;
  for (let t = 0; t < w.length; t++) if (w[t] !== 0) s += w[t] * x[t];
  return s;
}

/** The aggregate of `values` (one per token) in mode o.agg. */
export function aggregate(values: ArrayLike<number>, b: TokenBatch, o: AggOptions): number {
  return weightedSum(aggregationWeights(b, o), values);
}
