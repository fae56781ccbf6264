// The RL policy loss (EasyR1 core_algos' compute_policy_loss and its variants): per-token
// policy-gradient terms of one kind (PPO/GRPO clipped ratio with dual-clip and DAPO clip-higher,
// GSPO, CISPO), an optional KL penalty against the reference policy and an entropy bonus, reduced
// by one aggregation mode. It returns the loss, the metrics veRL reports and d loss / d logp (and
// d loss / d entropy), which the fused log-prob head's backward turns into model gradients.
//
// These are O(T) host loops in double over at most a few hundred thousand tokens, far cheaper than
// the log-prob head that produced logp; sums run in token order, so the result is deterministic.
import { type AggOptions, aggregationWeights, checkAggOptions, weightedSum } from './aggregation.js';
import { KL_ESTIMATORS, type KlEstimator, klEstimator } from './kl-estimator.js';
import { checkChoice, checkCuSeqlens, checkF32, checkMask, checkNumber } from './loss-checks.js';

/**
 * ppo: clipped surrogate max(−A·r, −A·clip(r, 1−clipLow, 1+clipHigh)), r = exp(logp − oldLogp) per token.
 * gspo: the same with one ratio per sequence, exp(mean masked log-ratio), gradient through each token's own logp.
 * cispo: −stopgrad(clip(r))·A·logp, a REINFORCE term weighted by the clipped ratio.
 */
export type PolicyLossKind = 'ppo' | 'gspo' | 'cispo';
export const POLICY_LOSS_KINDS: readonly PolicyLossKind[] = ['ppo', 'gspo', 'cispo'];

export interface PolicyLossOptions extends AggOptions {
  kind: PolicyLossKind;
  /** Lower clip: ratios below 1 − clipLow are clipped; in [0, 1). */
  clipLow: number;
  /** Upper clip: ratios above 1 + clipHigh are clipped (DAPO clip-higher uses 0.28); >= 0. */
  clipHigh: number;
  /** ppo only: c > 1 caps the loss of negative-advantage tokens at −A·c (dual clip); 0 (default) disables. */
  dualClip?: number;
  /** KL penalty against refLogp (default 'none'); needs inputs.refLogp. */
  kl?: KlEstimator;
  klCoef?: number;
  /** Entropy bonus: the loss subtracts entropyCoef × aggregated entropy; needs inputs.entropy when != 0. */
  entropyCoef?: number;
}

export interface PolicyLossInputs {
  /** [T] current policy log-probs. */
  logp: Float32Array;
  /** [T] behaviour (rollout) policy log-probs. */
  oldLogp: Float32Array;
  /** [T] reference policy log-probs, required when options.kl is not 'none'. */
  refLogp?: Float32Array;
  /** [T] per-token advantages. */
  advantages: Float32Array;
  /** [T] 1 for tokens that count, 0 otherwise. */
  mask: Float32Array;
  /** [T] per-token entropy (from the log-prob head): reported as a metric, and the entropy bonus's input. */
  entropy?: Float32Array;
  /** [nSeqs + 1] sequence offsets into the T tokens. */
  cuSeqlens: Int32Array;
}

export interface PolicyLossMetrics {
  /** Aggregated policy-gradient loss. */
  pg_loss: number;
  /** Aggregated KL estimate (0 without a KL estimator). */
  kl_loss: number;
  /** Aggregated entropy (0 when inputs.entropy is absent). */
  entropy: number;
  /** Masked fraction of tokens whose clipped term is the larger (ppo/gspo), or whose ratio exceeded 1 + clipHigh (cispo). */
  pg_clipfrac_higher: number;
  /** Masked fraction of tokens capped by the dual clip (ppo), or whose ratio fell below 1 − clipLow (cispo). */
  pg_clipfrac_lower: number;
  /** Masked mean of oldLogp − logp (log-ratio clamped to ±20 for ppo and cispo). */
  ppo_kl: number;
  /** Masked-in tokens of this batch. */
  tokens: number;
}

export interface PolicyLossResult {
  /** pg_loss + klCoef·kl_loss − entropyCoef·entropy. */
  loss: number;
  /** The loss terms (aggregated like the loss) and diagnostics (plain masked means over this batch). */
  metrics: PolicyLossMetrics;
  /** [T] d loss / d logp. */
  dlogp: Float32Array;
  /** [T] d loss / d entropy (= −entropyCoef × aggregation weight), present when inputs.entropy is. */
  dentropy?: Float32Array;
}

/** PPO/CISPO per-token log-ratio clamp: exp(20) ~ 5e8 stays finite. */
const MAX_LOG_RATIO = 20;
/** GSPO's sequence log-ratio upper clamp. */
const MAX_SEQ_LOG_RATIO = 10;

const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

/**
 * Per-token policy-gradient terms of one kind: value, d value / d logp, the indicators behind the
 * clip-fraction metrics and the log-ratio behind ppo_kl.
 */
interface TokenTerms {
  loss: Float64Array;
  dloss: Float64Array;
  clipHigher: Float64Array;
  clipLower: Float64Array;
  logRatio: Float64Array;
}

function tokenTerms(T: number): TokenTerms {
  const z = () => new Float64Array(T);
  return { loss: z(), dloss: z(), clipHigher: z(), clipLower: z(), logRatio: z() };
}

/** The checked options with their defaults: ratio bounds [lo, hi], dual clip c (0 off), coefficients. */
interface Config {
  kind: PolicyLossKind;
  agg: Required<AggOptions>;
  lo: number;
  hi: number;
  dualClip: number;
  kl: KlEstimator;
  klCoef: number;
  entropyCoef: number;
}

/**
 * Token t's clipped surrogate max(−A·r, −A·clip(r, lo, hi)), given r and dr = d r / d logp, into
 * out.loss, out.dloss and out.clipHigher. The clipped branch is the strictly larger one only where r
 * is outside [lo, hi], where clip(r) is constant: it never carries a gradient.
 */
function clippedSurrogate(out: TokenTerms, t: number, A: number, r: number, dr: number, lo: number, hi: number) {
  const unclipped = -A * r;
  const clipped = -A * clamp(r, lo, hi);
  const isClipped = unclipped < clipped;
  out.loss[t] = isClipped ? clipped : unclipped;
  out.dloss[t] = isClipped ? 0 : -A * dr;
  out.clipHigher[t] = isClipped ? 1 : 0;
}

/**
 * PPO: r = exp(clamp(logp − oldLogp, ±20)) (no gradient through the clamp), the clipped surrogate,
 * and the dual clip min(l, −A·c) for negative advantages.
 */
function ppoTerms(x: PolicyLossInputs, c: Config): TokenTerms {
  const out = tokenTerms(x.logp.length);
  for (let t = 0; t < x.logp.length; t++) {
    const raw = x.logp[t] - x.oldLogp[t];
    const delta = clamp(raw, -MAX_LOG_RATIO, MAX_LOG_RATIO);
    const A = x.advantages[t];
    const r = Math.exp(delta);
    clippedSurrogate(out, t, A, r, Math.abs(raw) < MAX_LOG_RATIO ? r : 0, c.lo, c.hi);
    if (c.dualClip > 0 && A < 0 && out.loss[t] > -A * c.dualClip) {
      out.loss[t] = -A * c.dualClip;
      out.dloss[t] = 0;
      out.clipLower[t] = 1;
    }
    out.logRatio[t] = delta;
  }
  return out;
}

/**
 * GSPO: one ratio per sequence, r = exp(min(s, 10)) with s the masked mean log-ratio, carried by every
 * token of the sequence; token t's gradient flows through its own logp only (log r = s + logp_t −
 * stopgrad(logp_t)), so d r / d logp_t = r.
 */
function gspoTerms(x: PolicyLossInputs, c: Config): TokenTerms {
  const out = tokenTerms(x.logp.length);
  const cu = x.cuSeqlens;
  for (let i = 0; i + 1 < cu.length; i++) {
    let sum = 0;
    let count = 0;
    for (let t = cu[i]; t < cu[i + 1]; t++) {
      if (x.mask[t] === 0) continue;
      sum += x.mask[t] * (x.logp[t] - x.oldLogp[t]);
      count += x.mask[t];
    }
    const s = count > 0 ? sum / count : 0;
    const r = Math.exp(Math.min(s, MAX_SEQ_LOG_RATIO));
    const dr = s < MAX_SEQ_LOG_RATIO ? r : 0;
    for (let t = cu[i]; t < cu[i + 1]; t++) {
      clippedSurrogate(out, t, x.advantages[t], r, dr, c.lo, c.hi);
      out.logRatio[t] = x.logp[t] - x.oldLogp[t];
    }
  }
  return out;
}

/** CISPO: l = −stopgrad(clip(r, lo, hi))·A·logp, so d l / d logp = −clip(r)·A. */
function cispoTerms(x: PolicyLossInputs, c: Config): TokenTerms {
  const out = tokenTerms(x.logp.length);
  for (let t = 0; t < x.logp.length; t++) {
    const delta = clamp(x.logp[t] - x.oldLogp[t], -MAX_LOG_RATIO, MAX_LOG_RATIO);
    const r = Math.exp(delta);
    const weight = clamp(r, c.lo, c.hi);
    out.loss[t] = -weight * x.advantages[t] * x.logp[t];
    out.dloss[t] = -weight * x.advantages[t];
    out.clipHigher[t] = r > c.hi ? 1 : 0;
    out.clipLower[t] = r < c.lo ? 1 : 0;
    out.logRatio[t] = delta;
  }
  return out;
}

/** The KL penalty per token and its derivative wrt logp (zeros without an estimator). */
function klTerms(x: PolicyLossInputs, estimator: KlEstimator): { kl: Float64Array; dkl: Float64Array } {
  const T = x.logp.length;
  const kl = new Float64Array(T);
  const dkl = new Float64Array(T);
  if (estimator === 'none') return { kl, dkl };
  const e = klEstimator(estimator);
  for (let t = 0; t < T; t++) {
    const d = x.logp[t] - x.refLogp![t];
    kl[t] = e.value(d);
    dkl[t] = e.dlogp(d);
  }
  return { kl, dkl };
}

const TERMS: Record<PolicyLossKind, (x: PolicyLossInputs, c: Config) => TokenTerms> = {
  ppo: ppoTerms,
  gspo: gspoTerms,
  cispo: cispoTerms,
};

function checkOptions(fn: string, o: PolicyLossOptions): Config {
  const kind = checkChoice(fn, o, 'kind', POLICY_LOSS_KINDS);
  const agg = checkAggOptions(fn, o);
  const clipLow = checkNumber(fn, o, 'clipLow');
  const clipHigh = checkNumber(fn, o, 'clipHigh');
  if (!(clipLow >= 0 && clipLow < 1)) throw new RangeError(`${fn}: option 'clipLow' must be in [0, 1), got ${clipLow}`);
  if (!(clipHigh >= 0)) throw new RangeError(`${fn}: option 'clipHigh' must be >= 0, got ${clipHigh}`);
  const dualClip = checkNumber(fn, o, 'dualClip', 0);
  if (!(dualClip === 0 || dualClip > 1))
    throw new RangeError(`${fn}: option 'dualClip' must be 0 (off) or > 1, got ${dualClip}`);
  if (dualClip !== 0 && kind !== 'ppo') throw new RangeError(`${fn}: option 'dualClip' applies to kind 'ppo' only`);
  return {
    kind,
    agg,
    lo: 1 - clipLow,
    hi: 1 + clipHigh,
    dualClip,
    kl: checkChoice(fn, o, 'kl', KL_ESTIMATORS, 'none'),
    klCoef: checkNumber(fn, o, 'klCoef', 0),
    entropyCoef: checkNumber(fn, o, 'entropyCoef', 0),
  };
}

function checkInputs(fn: string, x: PolicyLossInputs, c: Config): void {
  const T = checkF32(fn, 'inputs.logp', x.logp).length;
  const same = 'T = logp.length';
  checkF32(fn, 'inputs.oldLogp', x.oldLogp, T, same);
  checkF32(fn, 'inputs.advantages', x.advantages, T, same);
  if (x.refLogp !== undefined) checkF32(fn, 'inputs.refLogp', x.refLogp, T, same);
  if (x.entropy !== undefined) checkF32(fn, 'inputs.entropy', x.entropy, T, same);
  checkMask(fn, 'inputs.mask', x.mask, T);
  checkCuSeqlens(fn, 'inputs.cuSeqlens', x.cuSeqlens, T);
  if (c.kl !== 'none' && !x.refLogp)
    throw new TypeError(`${fn}: option kl '${c.kl}' needs inputs.refLogp (the reference policy's log-probs)`);
  if (c.entropyCoef !== 0 && !x.entropy) throw new TypeError(`${fn}: option 'entropyCoef' != 0 needs inputs.entropy`);
}

/**
 * RL policy loss with optional KL penalty and entropy bonus: value, metrics and d loss / d logp (and
 * d loss / d entropy). An empty mask gives loss 0 and zero gradients.
 */
export function policyLoss(x: PolicyLossInputs, o: PolicyLossOptions): PolicyLossResult {
  const fn = 'policyLoss';
  const c = checkOptions(fn, o);
  checkInputs(fn, x, c);
  const T = x.logp.length;
  const w = aggregationWeights(x, c.agg);
  // The diagnostic metrics are plain masked means over this batch (no global normalisers).
  const meanW = aggregationWeights(x, { agg: 'token-mean' });
  const pg = TERMS[c.kind](x, c);

  const { kl, dkl } = klTerms(x, c.kl);
  let tokens = 0;
  for (let t = 0; t < T; t++) tokens += x.mask[t];
  const metrics: PolicyLossMetrics = {
    pg_loss: weightedSum(w, pg.loss),
    kl_loss: c.kl !== 'none' ? weightedSum(w, kl) : 0,
    entropy: x.entropy ? weightedSum(w, x.entropy) : 0,
    pg_clipfrac_higher: weightedSum(meanW, pg.clipHigher),
    pg_clipfrac_lower: weightedSum(meanW, pg.clipLower),
    ppo_kl: -weightedSum(meanW, pg.logRatio),
    tokens,
  };
  const dlogp = new Float32Array(T);
  for (let t = 0; t < T; t++) dlogp[t] = w[t] * (pg.dloss[t] + c.klCoef * dkl[t]);
  const result: PolicyLossResult = {
    loss: metrics.pg_loss + c.klCoef * metrics.kl_loss - c.entropyCoef * metrics.entropy,
    metrics,
    dlogp,
  };
  if (x.entropy) {
    const dentropy = new Float32Array(T);
    for (let t = 0; t < T; t++) dentropy[t] = -c.entropyCoef * w[t];
    result.dentropy = dentropy;
  }
  return result;
}
