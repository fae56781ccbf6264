// The supervised fine-tuning loss: the aggregated negative log-likelihood of the response tokens,
// with d loss / d logp for the fused log-prob head's backward (the SFT warm-up, examples/memorize.ts).
import { type AggOptions, aggregationWeights, checkAggOptions, weightedSum } from './aggregation.js';
import { checkCuSeqlens, checkF32, checkMask } from './loss-checks.js';

export interface SftLossResult {
  /** Aggregated negative log-likelihood, aggregate(−logp). */
  loss: number;
  /** [T] d loss / d logp = −(aggregation weight). */
  dlogp: Float32Array;
}

/** loss = aggregate(−logp) over the masked tokens (mask and cuSeqlens as in aggregation.ts). */
export function sftLoss(logp: Float32Array, mask: Float32Array, cuSeqlens: Int32Array, o: AggOptions): SftLossResult {
  const fn = 'sftLoss';
  const agg = checkAggOptions(fn, o);
  checkF32(fn, 'logp', logp);
  const T = logp.length;
  const b = { mask: checkMask(fn, 'mask', mask, T), cuSeqlens: checkCuSeqlens(fn, 'cuSeqlens', cuSeqlens, T) };
  const w = aggregationWeights(b, agg);
  const dlogp = new Float32Array(T);
  for (let t = 0; t < T; t++) dlogp[t] = -w[t];
  return { loss: -weightedSum(w, logp), dlogp };
}
