// KL against the frozen reference policy as a reward penalty (algorithm.use_kl_loss: false with
// disable_kl: false, as veRL's apply_kl_penalty), and the controllers of its coefficient: fixed, or
// adaptive towards a target KL (Ziegler et al. 2019, arXiv 1909.08593).
//
// The per-token KL values are an input: they come from klValues (kl-estimator.ts), the estimators
// of the policy loss's KL term (k1, abs, mse, low_var_kl), so there is one definition of each.

export interface KlPenaltyResult {
  /** Per response, token rewards minus coef × KL. */
  tokenRewards: Float32Array[];
  /** Batch KL: the mean over responses of each response's mean token KL (what the controller sees). */
  meanKl: number;
  metrics: { 'kl/in_reward': number; 'kl/coef': number };
}

/** r'_t = r_t - coef·kl_t per response token. */
export function applyKlPenalty(
  tokenScores: readonly Float32Array[],
  tokenKl: readonly Float32Array[],
  coef: number,
): KlPenaltyResult {
  if (tokenScores.length !== tokenKl.length)
    throw new RangeError(
      `applyKlPenalty: tokenScores has ${tokenScores.length} responses but tokenKl has ${tokenKl.length}`,
    );
  let klSum = 0;
  let counted = 0;
  const tokenRewards = tokenScores.map((s, i) => {
    const kl = tokenKl[i];
    if (kl.length !== s.length)
      throw new RangeError(`applyKlPenalty: response ${i} has ${s.length} token scores but ${kl.length} KL values`);
    if (s.length > 0) {
      klSum += kl.reduce((a, x) => a + x, 0) / s.length;
      counted++;
    }
    return s.map((x, t) => x - coef * kl[t]);
  });
  const meanKl = counted ? klSum / counted : 0;
  return { tokenRewards, meanKl, metrics: { 'kl/in_reward': meanKl, 'kl/coef': coef } };
}

export interface KlControllerState {
  coef: number;
}

export interface KlController {
  readonly coef: number;
  /** After a step: the batch's mean KL and the number of responses in it. */
  update(currentKl: number, nSteps: number): void;
  /** For checkpoints: restore with the same options and this state to resume exactly. */
  state(): KlControllerState;
}

export class FixedKlController implements KlController {
  constructor(readonly coef: number) {}
  update(): void {}
  state(): KlControllerState {
    return { coef: this.coef };
  }
}

/**
 * coef ← coef · (1 + clip(KL/target − 1, −0.2, 0.2) · nSteps / horizon): the coefficient grows when
 * the policy drifts beyond the target KL and shrinks when it stays within.
 */
export class AdaptiveKlController implements KlController {
  coef: number;
  constructor(
    initCoef: number,
    readonly target: number,
    readonly horizon: number,
  ) {
    if (!(target > 0)) throw new RangeError(`AdaptiveKlController: kl_target must be > 0, got ${target}`);
    if (!(horizon > 0)) throw new RangeError(`AdaptiveKlController: kl_horizon must be > 0, got ${horizon}`);
    this.coef = initCoef;
  }
  update(currentKl: number, nSteps: number): void {
    const error = Math.min(0.2, Math.max(-0.2, currentKl / this.target - 1));
    this.coef *= 1 + (error * nSteps) / this.horizon;
  }
  state(): KlControllerState {
    return { coef: this.coef };
  }
}

/** The controller algorithm.kl_type names, optionally resumed from a checkpoint's state. */
export function createKlController(
  o: { kl_type: 'fixed' | 'adaptive'; kl_coef: number; kl_target: number; kl_horizon: number },
  resume?: KlControllerState,
): KlController {
  const coef = resume?.coef ?? o.kl_coef;
  return o.kl_type === 'fixed'
    ? new FixedKlController(coef)
    : new AdaptiveKlController(coef, o.kl_target, o.kl_horizon);
}
