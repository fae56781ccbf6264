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

/**
 * A ground truth's modality as a metric name: the tag without brackets, upper case (the modality reward
 * compares tags regardless of case), characters other than letters, digits, '_', '-' and '.' as '_'
 * (MLflow refuses others in a key); NO_TAG for a ground truth without one.
 */
export function modalityName(answer: string): string {
  const tag = parseGroundTruth(answer).tag.slice(1, -1).toUpperCase();
  return tag ? tag.replace(/[^A-Z0-9_.-]/g, '_') : 'NO_TAG';
}

/** `val/<component>` over every sample, and `val/accuracy_llm/<MODALITY>` per modality (modalityName). */
export function validationMetrics(samples: readonly ScoredSample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of REWARD_COMPONENTS) out[`val/${c}`] = meanOf(samples, c);
  const byTag = new Map<string, ScoredSample[]>(); // Map.groupBy needs Node 21
  for (const s of samples) {
    const tag = modalityName(s.answer);
    byTag.set(tag, [...(byTag.get(tag) ?? []), s]);
  }
  if (byTag.size > 1)
    for (const tag of [...byTag.keys()].sort())
      out[`${MODALITY_ACCURACY}${tag}`] = meanOf(byTag.get(tag)!, 'accuracy_llm');
  return out;
}

/**
 * The per-modality accuracies in validationMetrics' output, by modality; null where no sample of the
 * modality had an accuracy (the judge unavailable for all), as JSON would write the NaN.
 */
export function accuracyByModality(metrics: Record<string, number>): Record<string, number | null> {
  return Object.fromEntries(
    Object.entries(metrics)
      .filter(([k]) => k.startsWith(MODALITY_ACCURACY))
      .map(([k, v]) => [k.slice(MODALITY_ACCURACY.length), Number.isFinite(v) ? v : null]),
  );
}
