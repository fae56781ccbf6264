// DAPO's online filtering (arXiv 2503.14476): a prompt group whose responses all succeed or all fail
// has zero advantage everywhere and only dilutes the batch, so groups whose mean score is at or
// below filter_low, or at or above filter_high, are dropped, and the sampler keeps generating
// until the batch is full again (up to max_try_make_batch rounds, as EasyR1's trainer does).
import { groupIndices, mean } from './groups.js';

export interface GroupFilterResult<G extends number | string> {
  /** Groups kept, in order of first appearance. */
  kept: G[];
  droppedLow: G[];
  droppedHigh: G[];
  metrics: { 'filter/groups': number; 'filter/kept_ratio': number; 'filter/dropped_low': number; 'filter/dropped_high': number };
}

/** Keeps the groups whose mean score lies strictly inside (low, high). */
export function filterGroupsByMeanScore<G extends number | string>(scores: readonly number[], groups: readonly G[], low: number, high: number): GroupFilterResult<G> {
  if (scores.length !== groups.length) throw new RangeError(`filterGroupsByMeanScore: scores has ${scores.length} entries but groups has ${groups.length}`);
  const kept: G[] = [];
  const droppedLow: G[] = [];
  const droppedHigh: G[] = [];
  for (const [g, idx] of groupIndices(groups)) {
    const m = mean(idx.map((i) => scores[i]));
    if (m <= low) droppedLow.push(g as G);
    else if (m >= high) droppedHigh.push(g as G);
    else kept.push(g as G);
  }
  const total = kept.length + droppedLow.length + droppedHigh.length;
  return {
    kept,
    droppedLow,
    droppedHigh,
    metrics: { 'filter/groups': total, 'filter/kept_ratio': total ? kept.length / total : 0, 'filter/dropped_low': droppedLow.length, 'filter/dropped_high': droppedHigh.length },
  };
}

export class BatchFillError extends Error {
  override name = 'BatchFillError';
}

export interface FillBatchOptions<T> {
  /** Groups the batch needs (data.rollout_batch_size prompts). */
  targetGroups: number;
  /** Sampling rounds allowed (algorithm.max_try_make_batch); <= 0: no limit, as EasyR1. */
  maxTries: number;
  /** One round: generate and score some prompt groups. `round` counts from 1. */
  sampleRound: (round: number) => Promise<T[]>;
  /** Whether a sampled group is kept (e.g. its mean score inside (filter_low, filter_high)). */
  keep: (group: T) => boolean;
}

export interface FilledBatch<T> {
  /** Exactly targetGroups groups, in the order they were sampled. */
  groups: T[];
  rounds: number;
  sampledGroups: number;
  /** Kept groups beyond the target, discarded because the batch was full. */
  surplusGroups: number;
}

/**
 * Samples rounds until targetGroups groups pass `keep`, then cuts the batch to the target. Fails
 * with a BatchFillError naming the counts when maxTries rounds were not enough: the data (or the
 * filter bounds) leave too few informative prompts.
 */
export async function fillFilteredBatch<T>(o: FillBatchOptions<T>): Promise<FilledBatch<T>> {
  if (!Number.isInteger(o.targetGroups) || o.targetGroups < 1) throw new RangeError(`fillFilteredBatch: targetGroups must be a positive integer, got ${o.targetGroups}`);
  const kept: T[] = [];
  let sampled = 0;
  let round = 0;
  while (kept.length < o.targetGroups) {
    if (o.maxTries > 0 && round >= o.maxTries) {
      throw new BatchFillError(
        `online filtering kept ${kept.length} of ${sampled} groups in ${round} rounds, fewer than the ${o.targetGroups} a batch needs; ` +
          'raise algorithm.max_try_make_batch, widen filter_low/filter_high, or check that the data is neither too easy nor too hard',
      );
    }
    round++;
    const groups = await o.sampleRound(round);
    sampled += groups.length;
    for (const g of groups) if (o.keep(g)) kept.push(g);
  }
  return { groups: kept.slice(0, o.targetGroups), rounds: round, sampledGroups: sampled, surplusGroups: kept.length - o.targetGroups };
}
