// RL formulas as small pure functions, each checked against a direct formula in the tests:
// outcome advantages per prompt group (GRPO, RLOO, REINFORCE++), DAPO's group filter, and the
// learning-rate schedule.

/** GRPO: (r - mean_g) / (std_g + eps) with the unbiased std (or r - mean_g without std scaling). A single-sample group gets 0. */
export function grpoAdvantages(rewards: readonly number[], groups: readonly number[], normByStd = true, eps = 1e-6): number[] {
  const byGroup = groupIndices(groups);
  const adv = new Array<number>(rewards.length).fill(0);
  for (const idx of byGroup.values()) {
    if (idx.length < 2) continue;
    const mean = idx.reduce((s, i) => s + rewards[i], 0) / idx.length;
    const std = Math.sqrt(idx.reduce((s, i) => s + (rewards[i] - mean) ** 2, 0) / (idx.length - 1));
    for (const i of idx) adv[i] = normByStd ? (rewards[i] - mean) / (std + eps) : rewards[i] - mean;
  }
  return adv;
}

/** RLOO: r_i minus the mean of the other samples of its group. A single-sample group gets 0. */
export function rlooAdvantages(rewards: readonly number[], groups: readonly number[]): number[] {
  const adv = new Array<number>(rewards.length).fill(0);
  for (const idx of groupIndices(groups).values()) {
    if (idx.length < 2) continue;
    const sum = idx.reduce((s, i) => s + rewards[i], 0);
    for (const i of idx) adv[i] = rewards[i] - (sum - rewards[i]) / (idx.length - 1);
  }
  return adv;
}

/** REINFORCE++ with outcome rewards: returns whitened over the whole batch (no group baseline). */
export function reinforcePlusPlusAdvantages(rewards: readonly number[], eps = 1e-8): number[] {
  const n = rewards.length;
  if (n === 0) return [];
  const mean = rewards.reduce((s, r) => s + r, 0) / n;
  const std = Math.sqrt(rewards.reduce((s, r) => s + (r - mean) ** 2, 0) / n);
  return rewards.map((r) => (r - mean) / (std + eps));
}

export function groupIndices(groups: readonly number[]): Map<number, number[]> {
  const m = new Map<number, number[]>();
  groups.forEach((g, i) => m.set(g, [...(m.get(g) ?? []), i]));
  return m;
}

/** DAPO online filtering: keeps groups whose mean score is strictly inside (low, high). */
export function keepInformativeGroups(scores: readonly number[], groups: readonly number[], low: number, high: number): Set<number> {
  const keep = new Set<number>();
  for (const [g, idx] of groupIndices(groups)) {
    const mean = idx.reduce((s, i) => s + scores[i], 0) / idx.length;
    if (mean > low && mean < high) keep.add(g);
  }
  return keep;
}

export interface LrSchedule {
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  kind: 'constant' | 'cosine';
  minLrRatio: number;
}

/** Linear warm-up from 0, then constant or cosine decay to minLrRatio·lr at totalSteps. */
export function learningRate(s: LrSchedule, step: number): number {
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  if (s.kind === 'constant') return s.lr;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  const min = s.lr * s.minLrRatio;
  return min + (s.lr - min) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
