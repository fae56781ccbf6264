// Per-token estimates of KL(π‖ref) from one sampled token, x = logp − refLogp (EasyR1 core_algos'
// kl_penalty; Schulman's k1 and k3 estimators), with their derivatives with respect to logp. The
// policy loss's KL term (policy-loss.ts) and KL in the reward (kl.ts, through klValues) both use
// these, so each estimator has one definition.
import { checkChoice, checkF32 } from './loss-checks.js';

/**
 * k1: x. abs: |x|. mse: x²/2. low_var_kl (k3): exp(−x) + x − 1, with the log-ratio clamped to ±20
 * and the value to ±10. 'none': no KL term.
 */
export type KlEstimator = 'none' | 'k1' | 'abs' | 'mse' | 'low_var_kl';
export const KL_ESTIMATORS: readonly KlEstimator[] = ['none', 'k1', 'abs', 'mse', 'low_var_kl'];

/** low_var_kl's log-ratio clamp: exp(20) ~ 5e8 stays finite. */
const MAX_LOG_RATIO = 20;
/** low_var_kl's value clamp. */
const MAX_LOW_VAR_KL = 10;

const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

/** One estimator: its value at x = logp − refLogp and d value / d logp (= d value / d x). */
export interface KlFormula {
  value(x: number): number;
  dlogp(x: number): number;
}

const ESTIMATORS: Record<KlEstimator, KlFormula> = {
  none: { value: () => 0, dlogp: () => 0 },
  k1: { value: (x) => x, dlogp: () => 1 },
  abs: { value: (x) => Math.abs(x), dlogp: (x) => (x > 0 ? 1 : x < 0 ? -1 : 0) },
  mse: { value: (x) => 0.5 * x * x, dlogp: (x) => x },
  // k3 = exp(u) − u − 1 ≥ 0 with u = refLogp − logp = −x; d k3 / d logp = 1 − exp(u). Both clamps stop
  // the gradient where they are active.
  low_var_kl: {
    value: (x) => {
      const u = clamp(-x, -MAX_LOG_RATIO, MAX_LOG_RATIO);
      return clamp(Math.exp(u) - u - 1, -MAX_LOW_VAR_KL, MAX_LOW_VAR_KL);
    },
    dlogp: (x) => {
      const u = clamp(-x, -MAX_LOG_RATIO, MAX_LOG_RATIO);
      const k3 = Math.exp(u) - u - 1;
      return Math.abs(x) < MAX_LOG_RATIO && Math.abs(k3) < MAX_LOW_VAR_KL ? 1 - Math.exp(u) : 0;
    },
  },
};

/** The estimator's value and derivative functions, to look up once before a loop over tokens. */
export function klEstimator(estimator: KlEstimator): KlFormula {
  return ESTIMATORS[estimator];
}

/**
 * The per-token KL estimate of the policy loss's KL term, without a loss around it: what KL in the
 * reward subtracts, token by token.
 */
export function klValues(logp: Float32Array, refLogp: Float32Array, estimator: KlEstimator): Float32Array {
  const fn = 'klValues';
  checkF32(fn, 'logp', logp);
  checkF32(fn, 'refLogp', refLogp, logp.length, 'logp.length');
  const e = checkChoice(fn, { kl: estimator }, 'kl', KL_ESTIMATORS);
  const { value } = ESTIMATORS[e];
  const out = new Float32Array(logp.length);
  for (let t = 0; t < logp.length; t++) out[t] = value(logp[t] - refLogp[t]);
  return out;
}
