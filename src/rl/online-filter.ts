// DAPO's online filtering (arXiv 2503.14476): a prompt group whose responses all succeed or all fail
// has zero advantage everywhere and only dilutes the batch, so groups whose mean score is at or
// below filter_low, or at or above filter_high, are dropped, and the sampler keeps generating
// until the batch is full again (up to max_try_make_batch rounds, as EasyR1's trainer does), then
// cuts it to exactly the batch's prompts.
import { groupIndices, mean } from './groups.js';

/** Where a group's mean score falls against DAPO's bounds: only strictly inside (low, high) is kept. */
export function meanScoreBand(scores: readonly number[], low: number, high: number): 'low' | 'kept' | 'high' {
  const m = mean(scores);
  return m <= low ? 'low' : m >= high ? 'high' : 'kept';
}

export interface GroupFilterResult<G extends number | string> {
  /** Groups kept, in order of first appearance. */
  kept: G[];
  droppedLow: G[];
  droppedHigh: G[];
  metrics: {
    'filter/groups': number;
    'filter/kept_ratio': number;
    'filter/dropped_low': number;
    'filter/dropped_high': number;
  };
}

/** Keeps the groups whose mean score lies strictly inside (low, high). */
export function filterGroupsByMeanScore<G extends number | string>(
  scores: readonly number[],
  groups: readonly G[],
  low: number,
  high: number,
): GroupFilterResult<G> {
  if (scores.length !== groups.length)
    throw new RangeError(
      `filterGroupsByMeanScore: scores has ${scores.length} entries but groups has ${groups.length}`,
    );
  const kept: G[] = [];
  const droppedLow: G[] = [];
  const droppedHigh: G[] = [];
  for (const [g, idx] of groupIndices(groups)) {
    const band = meanScoreBand(
      idx.map((i) => scores[i]),
      low,
      high,
    );
    (band === 'low' ? droppedLow : band === 'high' ? droppedHigh : kept).push(g as G);
  }
  const total = kept.length + droppedLow.length + droppedHigh.length;
  return {
    kept,
    droppedLow,
    droppedHigh,
    metrics: {
      'filter/groups': total,
      'filter/kept_ratio': total ? kept.length / total : 0,
      'filter/dropped_low': droppedLow.length,
      'filter/dropped_high': droppedHigh.length,
    },
  };
}

export interface FillBatchOptions<T> {
  /** Prompt groups the batch needs (the trainer: rollout_batch_size). */
  target: number;
  /**
   * Sampling rounds allowed (algorithm.max_try_make_batch); Infinity or <= 0: no limit, as EasyR1.
   * 1 is a single round: the trainer's batch without online filtering.
   */
  maxRounds: number;
  /** One round: generate and score some prompt groups. `round` counts from 1. */
  sampleRound: (round: number) => Promise<T[]>;
  /** Whether a sampled group is kept (e.g. its mean score inside (filter_low, filter_high)). */
  keep: (group: T) => boolean;
}

export interface FilledBatch<T> {
  /** The kept groups in the order sampled, cut to exactly `target` when there are more (as EasyR1). */
  groups: T[];
  /** Groups kept over all rounds, before the cut. */
  kept: number;
  rounds: number;
  sampledGroups: number;
  /** The rounds ran out before the kept groups reached the target: `groups` is all there is. */
  exhausted: boolean;
}

/**
 * Samples rounds until the kept groups reach the target or maxRounds rounds are done, then keeps
 * the first `target` groups. Running out of rounds is not decided here: the caller gets what was
 * kept with `exhausted` set, and stops (the reference's behaviour) or trains on it, as configured.
 */
export async function fillFilteredBatch<T>(o: FillBatchOptions<T>): Promise<FilledBatch<T>> {
  if (!(o.target > 0)) throw new RangeError(`fillFilteredBatch: target must be positive, got ${o.target}`);
  if (Number.isNaN(o.maxRounds))
    throw new RangeError('fillFilteredBatch: maxRounds is NaN (Infinity or <= 0 means no limit)');
  const limit = o.maxRounds > 0 ? o.maxRounds : Infinity;
  const groups: T[] = [];
  let sampled = 0;
  let rounds = 0;
  while (groups.length < o.target && rounds < limit) {
    rounds++;
    const round = await o.sampleRound(rounds);
    sampled += round.length;
    groups.push(...round.filter((g) => o.keep(g)));
  }
  return {
    groups: groups.slice(0, o.target),
    kept: groups.length,
    rounds,
    sampledGroups: sampled,
    exhausted: groups.length < o.target,
  };
}
