// The held-out metrics of a validation pass: the mean of each reward component over every sample, and
// the accuracy per modality (the ground truth's <TAG>) when the rows hold more than one, so a modality
// the model has not learnt shows instead of hiding in the mean (`val/accuracy_llm/X_RAY`, ...).
import type { RewardResult } from '../reward/composite.js';
import { MODALITY_ACCURACY, REWARD_COMPONENTS, type RewardComponent } from '../reward/components.js';
import { parseGroundTruth } from '../reward/normalize.js';

export interface ScoredSample {
  /** The row's ground truth, "<MODALITY> answer". */
  answer: string;
  reward: RewardResult;
}

/** The mean of `component` over the samples that have it (the judge may have been unavailable for some). */
function meanOf(samples: readonly ScoredSample[], component: RewardComponent): number {
  const xs = samples.map((s) => s.reward[component]).filter((x): x is number => x !== null);
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** `val/<component>` over every sample, and `val/accuracy_llm/<MODALITY>` per modality tag (brackets dropped). */
export function validationMetrics(samples: readonly ScoredSample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of REWARD_COMPONENTS) out[`val/${c}`] = meanOf(samples, c);
  const byTag = new Map<string, ScoredSample[]>(); // Map.groupBy needs Node 21
  for (const s of samples) {
    const tag = parseGroundTruth(s.answer).tag.replace(/^<|>$/g, '') || 'untagged';
    byTag.set(tag, [...(byTag.get(tag) ?? []), s]);
  }
  if (byTag.size > 1)
    for (const [tag, group] of [...byTag].sort(([a], [b]) => a.localeCompare(b)))
      out[`${MODALITY_ACCURACY}${tag}`] = meanOf(group, 'accuracy_llm');
  return out;
}

/** The per-modality accuracies in validationMetrics' output, by modality tag. */
export function accuracyByModality(metrics: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(metrics)
      .filter(([k]) => k.startsWith(MODALITY_ACCURACY))
      .map(([k, v]) => [k.slice(MODALITY_ACCURACY.length), v]),
  );
}
