// The training config's keys as the RL functions take them: each mapping one small pure function, so a
// test holds every key to the option it sets (a run compares with itself, so a key wired to the wrong
// option would cancel out there).
import { klPlacement, type TrainingConfig } from '../config/index.js';
import { meanScoreBand } from '../rl/online-filter.js';
import type { PolicyLossOptions } from '../rl/policy-loss.js';
import type { RewardComponent } from '../reward/components.js';

/** worker.actor's loss keys, and the algorithm's KL when it is a loss term. */
export function policyLossOptions(cfg: TrainingConfig): PolicyLossOptions {
  const actor = cfg.worker.actor;
  return {
    kind: actor.loss_type,
    agg: actor.loss_avg_mode === 'token' ? 'token-mean' : 'seq-mean-token-mean',
    clipLow: actor.clip_ratio_low,
    clipHigh: actor.clip_ratio_high,
    dualClip: actor.clip_ratio_dual,
    kl: klPlacement(cfg.algorithm) === 'loss' ? cfg.algorithm.kl_penalty : 'none',
    klCoef: cfg.algorithm.kl_coef,
    entropyCoef: actor.entropy_coef,
  };
}

/**
 * DAPO's online filter: whether a prompt's group of rewards is kept, by the mean of its algorithm.filter_key
 * component strictly inside (filter_low, filter_high); every group when online_filtering is off. A missing
 * component (the judge unavailable) counts 0.
 */
export function onlineFilterKeep(
  a: TrainingConfig['algorithm'],
): (rewards: readonly Record<RewardComponent, number | null>[]) => boolean {
  if (!a.online_filtering) return () => true;
  return (rewards) =>
    meanScoreBand(
      rewards.map((r) => r[a.filter_key] ?? 0),
      a.filter_low,
      a.filter_high,
    ) === 'kept';
}

/** algorithm's advantage keys: GRPO's division by the group's std (off: Dr. GRPO) and REINFORCE++'s discount. */
export function advantageOptions(a: TrainingConfig['algorithm']): { normByStd: boolean; gamma: number } {
  return { normByStd: a.norm_adv_by_std_in_grpo, gamma: a.gamma };
}
