// Advantage estimators for outcome rewards (one scalar score per response), after the estimators of
// veRL / EasyR1 (core_algos): GRPO, GRPO pass@k, RLOO, ReMax, and REINFORCE++ over per-token rewards.
// Each is a small pure function returning the advantages and its metrics; the tests check them
// against the formulas written out directly.
import { checkSameLength, groupIndices, mean, std, summary } from './groups.js';

export type AdvantageMetrics = Record<string, number>;

export interface OutcomeAdvantages {
  /** One advantage per response, broadcast over its tokens by the caller (see perTokenAdvantages). */
  advantages: number[];
  metrics: AdvantageMetrics;
}

export interface GroupedScores {
  /** The response's scalar reward. */
  scores: readonly number[];
  /** The prompt group of each response (responses to the same prompt share an id). */
  groups: readonly (number | string)[];
}

function advantageMetrics(advantages: readonly number[], extra: AdvantageMetrics = {}): AdvantageMetrics {
  const s = summary(advantages);
  return { 'advantages/mean': s.mean, 'advantages/min': s.min, 'advantages/max': s.max, ...extra };
}

/**
 * GRPO: A_i = (r_i - mean_g) / (std_g + eps) with the unbiased std of the group, or r_i - mean_g
 * when normByStd is false (Dr. GRPO's choice). A group of one has no baseline and gets 0; groups
 * whose rewards are all equal get 0 too and are counted, since they carry no signal.
 */
export function grpoAdvantages(input: GroupedScores, o: { normByStd?: boolean; eps?: number } = {}): OutcomeAdvantages {
  const { scores, groups } = input;
  checkSameLength('grpoAdvantages', scores, groups, 'scores', 'groups');
  const normByStd = o.normByStd ?? true;
  const eps = o.eps ?? 1e-6;
  const advantages = new Array<number>(scores.length).fill(0);
  let singletons = 0;
  let zeroStd = 0;
  const byGroup = groupIndices(groups);
  for (const idx of byGroup.values()) {
    if (idx.length < 2) {
      singletons++;
      continue;
    }
    const r = idx.map((i) => scores[i]);
    const m = mean(r);
    const s = std(r, true);
    if (s === 0) zeroStd++;
    for (const i of idx) advantages[i] = normByStd ? (scores[i] - m) / (s + eps) : scores[i] - m;
  }
  return {
    advantages,
    metrics: advantageMetrics(advantages, {
      'grpo/singleton_groups': singletons,
      'grpo/zero_std_group_ratio': byGroup.size ? zeroStd / byGroup.size : 0,
    }),
  };
}

/**
 * GRPO pass@k (arXiv 2503.19595): only the best response of each group learns, with
 * A = (r_max - r_second) / (std_g + eps); every other response gets 0. Ties for the best go to the
 * first one sampled. Groups of one get 0.
 */
export function grpoPassKAdvantages(input: GroupedScores, o: { eps?: number } = {}): OutcomeAdvantages {
  const { scores, groups } = input;
  checkSameLength('grpoPassKAdvantages', scores, groups, 'scores', 'groups');
  const eps = o.eps ?? 1e-6;
  const advantages = new Array<number>(scores.length).fill(0);
  for (const idx of groupIndices(groups).values()) {
    if (idx.length < 2) continue;
    const ranked = [...idx].sort((a, b) => scores[b] - scores[a] || a - b);
    const [best, second] = ranked;
    advantages[best] =
      (scores[best] - scores[second]) /
      (std(
        idx.map((i) => scores[i]),
        true,
      ) +
        eps);
  }
  return { advantages, metrics: advantageMetrics(advantages) };
}

/** RLOO (arXiv 2402.14740): A_i = r_i - mean of the other responses of its group. Groups of one get 0. */
export function rlooAdvantages(input: GroupedScores): OutcomeAdvantages {
  const { scores, groups } = input;
  checkSameLength('rlooAdvantages', scores, groups, 'scores', 'groups');
  const advantages = new Array<number>(scores.length).fill(0);
  for (const idx of groupIndices(groups).values()) {
    if (idx.length < 2) continue;
    const total = idx.reduce((s, i) => s + scores[i], 0);
    for (const i of idx) advantages[i] = scores[i] - (total - scores[i]) / (idx.length - 1);
  }
  return { advantages, metrics: advantageMetrics(advantages) };
}

/**
 * ReMax (arXiv 2310.10505): A_i = r_i - b_i, where b_i is the reward of the greedy (temperature 0)
 * response to the same prompt, which the caller generates and scores.
 */
export function remaxAdvantages(scores: readonly number[], greedyBaselines: readonly number[]): OutcomeAdvantages {
  checkSameLength('remaxAdvantages', scores, greedyBaselines, 'scores', 'greedyBaselines');
  const advantages = scores.map((r, i) => r - greedyBaselines[i]);
  return { advantages, metrics: advantageMetrics(advantages, { 'remax/baseline_mean': mean(greedyBaselines) }) };
}

export interface TokenAdvantages {
  /** Per response, one advantage per response token. */
  advantages: Float32Array[];
  /** Per response, the discounted return of each token. */
  returns: Float32Array[];
  metrics: AdvantageMetrics;
}

/**
 * REINFORCE++ (arXiv 2501.03262): per token, the discounted return G_t = r_t + gamma·G_{t+1} of the
 * response's token rewards (the outcome score sits on the last token, KL penalties on every token),
 * then whitened over all tokens of the batch: (G - mean) / sqrt(var + 1e-8), var unbiased, as
 * veRL's masked_whiten. No group baseline, so it works with n = 1.
 */
export function reinforcePlusPlusAdvantages(
  tokenRewards: readonly Float32Array[],
  o: { gamma?: number } = {},
): TokenAdvantages {
  const gamma = o.gamma ?? 1;
  const returns = tokenRewards.map((r) => {
    const g = new Float32Array(r.length);
    let running = 0;
    for (let t = r.length - 1; t >= 0; t--) {
      running = r[t] + gamma * running;
      g[t] = running;
    }
    return g;
  });
  const all = returns.flatMap((g) => Array.from(g));
  const m = mean(all);
  const s = all.length > 1 ? std(all, true) : 0;
  const scale = 1 / Math.sqrt(s * s + 1e-8);
  const advantages = returns.map((g) => g.map((x) => (x - m) * scale));
  return {
    advantages,
    returns,
    metrics: advantageMetrics(
      advantages.flatMap((a) => Array.from(a)),
      { 'returns/mean': m },
    ),
  };
}

/**
 * Outcome scores as per-token rewards: the whole score on the last response token, as veRL places
 * it (an empty response gets an empty array).
 */
export function scoresToTokenRewards(scores: readonly number[], responseLengths: readonly number[]): Float32Array[] {
  checkSameLength('scoresToTokenRewards', scores, responseLengths, 'scores', 'responseLengths');
  return responseLengths.map((len, i) => {
    const r = new Float32Array(len);
    if (len > 0) r[len - 1] = scores[i];
    return r;
  });
}

/** Broadcasts one advantage per response over its tokens. */
export function perTokenAdvantages(advantages: readonly number[], responseLengths: readonly number[]): Float32Array[] {
  checkSameLength('perTokenAdvantages', advantages, responseLengths, 'advantages', 'responseLengths');
  return responseLengths.map((len, i) => new Float32Array(len).fill(advantages[i]));
}

export const ADVANTAGE_ESTIMATORS = ['grpo', 'grpo_passk', 'rloo', 'remax', 'reinforce_plus_plus'] as const;
export type AdvantageEstimator = (typeof ADVANTAGE_ESTIMATORS)[number];

export interface AdvantageInputs {
  groups: readonly (number | string)[];
  /** Per response, the reward of each response token: scoresToTokenRewards plus any KL-in-reward penalty. */
  tokenRewards: readonly Float32Array[];
  /** ReMax only: the greedy response's reward, per response. */
  greedyBaselines?: readonly number[];
}

/**
 * The configured estimator (algorithm.adv_estimator) on one batch, as per-token advantages. The
 * outcome estimators score each response by the sum of its token rewards, so a KL-in-reward
 * penalty reaches them as it does in veRL.
 */
export function computeAdvantages(
  estimator: AdvantageEstimator,
  input: AdvantageInputs,
  o: { normByStd?: boolean; gamma?: number; eps?: number } = {},
): { advantages: Float32Array[]; metrics: AdvantageMetrics } {
  checkSameLength('computeAdvantages', input.tokenRewards, input.groups, 'tokenRewards', 'groups');
  if (estimator === 'reinforce_plus_plus') return reinforcePlusPlusAdvantages(input.tokenRewards, { gamma: o.gamma });
  const scores = input.tokenRewards.map((r) => r.reduce((s, x) => s + x, 0));
  const grouped = { scores, groups: input.groups };
  const lengths = input.tokenRewards.map((r) => r.length);
  let out: OutcomeAdvantages;
  switch (estimator) {
    case 'grpo':
      out = grpoAdvantages(grouped, { normByStd: o.normByStd, eps: o.eps });
      break;
    case 'grpo_passk':
      out = grpoPassKAdvantages(grouped, { eps: o.eps });
      break;
    case 'rloo':
      out = rlooAdvantages(grouped);
      break;
    case 'remax':
      if (!input.greedyBaselines)
        throw new Error(
          "computeAdvantages: adv_estimator 'remax' needs greedyBaselines (the greedy response's reward per response)",
        );
      out = remaxAdvantages(scores, input.greedyBaselines);
      break;
    default:
      throw new Error(
        `computeAdvantages: unknown adv_estimator '${estimator as string}' (allowed: ${ADVANTAGE_ESTIMATORS.join(', ')})`,
      );
  }
  return { advantages: perTokenAdvantages(out.advantages, lengths), metrics: out.metrics };
}
