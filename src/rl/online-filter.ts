// DAPO's online filtering (arXiv 2503.14476): a prompt group whose responses all succeed or all fail
// has zero advantage everywhere and only dilutes the batch, so groups whose mean score is at or
// below filter_low, or at or above filter_high, are dropped, and the sampler keeps generating
// until the batch is full again (up to max_try_make_batch rounds, as EasyR1's trainer does).
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
  metrics: { 'filter/groups': number; 'filter/kept_ratio': number; 'filter/dropped_low': number; 'filter/dropped_high': number };
}

/** Keeps the groups whose mean score lies strictly inside (low, high). */
export function filterGroupsByMeanScore<G extends number | string>(scores: readonly number[], groups: readonly G[], low: number, high: number): GroupFilterResult<G> {
  if (scores.length !== groups.length) throw new RangeError(`filterGroupsByMeanScore: scores has ${scores.length} entries but groups has ${groups.length}`);
  const kept: G[] = [];
  const droppedLow: G[] = [];
  const droppedHigh: G[] = [];
  for (const [g, idx] of groupIndices(groups)) {
    const band = meanScoreBand(idx.map((i) => scores[i]), low, high);
    (band === 'low' ? droppedLow : band === 'high' ? droppedHigh : kept).push(g as G);
  }
  const total = kept.length + droppedLow.length + droppedHigh.length;
  return {
    kept,
    droppedLow,
    droppedHigh,
    metrics: { 'filter/groups': total, 'filter/kept_ratio': total ? kept.length / total : 0, 'filter/dropped_low': droppedLow.length, 'filter/dropped_high': droppedHigh.length },
  };
}

export interface FillBatchOptions<T> {
  /** What the batch needs, counted in `size` (the trainer: rollout_batch_size × n responses). */
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
  /** What a kept group adds towards the target (default 1: the target counts groups). */
  size?: (group: T) => number;
}

export interface FilledBatch<T> {
  /** Every kept group, in the order sampled; the last round may take the batch past the target, and nothing is cut (as EasyR1). */
  groups: T[];
  /** The kept groups' total size. */
  filled: number;
  rounds: number;
  sampledGroups: number;
  /** The rounds ran out before the kept groups reached the target: `groups` is all there is. */
  exhausted: boolean;
}

/**
 * Samples rounds until the kept groups reach the target or maxRounds rounds are done. Running out
 * of rounds is no error: a step can still train on a short batch, so the caller gets what was kept
 * with `exhausted` set, and decides how loudly to say so.
 */
export async function fillFilteredBatch<T>(o: FillBatchOptions<T>): Promise<FilledBatch<T>> {
  if (!(o.target > 0)) throw new RangeError(`fillFilteredBatch: target must be positive, got ${o.target}`);
  if (Number.isNaN(o.maxRounds)) throw new RangeError('fillFilteredBatch: maxRounds is NaN (Infinity or <= 0 means no limit)');
  const limit = o.maxRounds > 0 ? o.maxRounds : Infinity;
  const size = o.size ?? (() => 1);
  const groups: T[] = [];
  let filled = 0;
  let sampled = 0;
  let rounds = 0;
  while (filled < o.target && rounds < limit) {
    rounds++;
    const round = await o.sampleRound(rounds);
    sampled += round.length;
    for (const g of round) {
      if (!o.keep(g)) continue;
      groups.push(g);
      filled += size(g);
    }
  }
  return { groups, filled, rounds, sampledGroups: sampled, exhausted: filled < o.target };
}
