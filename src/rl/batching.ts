// Splitting a step's responses into mini-batches (one optimizer step each, worker.actor.
// global_batch_size responses) and micro-batches (one forward/backward each, gradients accumulated).
// Helpers return index lists into the step's responses, so the caller's data never moves.
import { groupIndices } from './groups.js';

function checkSize(fn: string, size: number): void {
  if (!Number.isInteger(size) || size < 1)
    throw new RangeError(`${fn}: batch size must be a positive integer, got ${size}`);
}

/** Consecutive chunks of `size` indices out of 0..n-1; the last chunk holds the remainder. */
export function splitIntoBatches(n: number, size: number): number[][] {
  checkSize('splitIntoBatches', size);
  const out: number[][] = [];
  for (let start = 0; start < n; start += size)
    out.push(Array.from({ length: Math.min(size, n - start) }, (_, k) => start + k));
  return out;
}

/**
 * Batches of whole prompt groups, at most `size` responses each, filled greedily in order of the
 * groups' first appearance: for work that must see a group at once (a group's advantage baseline,
 * sequence-level losses over a group). A group larger than `size` is an error, named.
 */
export function splitKeepingGroups(groups: readonly (number | string)[], size: number): number[][] {
  checkSize('splitKeepingGroups', size);
  const out: number[][] = [];
  let current: number[] = [];
  for (const [g, idx] of groupIndices(groups)) {
    if (idx.length > size)
      throw new RangeError(
        `splitKeepingGroups: group ${String(g)} has ${idx.length} responses, more than the batch size ${size}`,
      );
    if (current.length + idx.length > size) {
      out.push(current);
      current = [];
    }
    current.push(...idx);
  }
  if (current.length) out.push(current);
  return out;
}

/**
 * Consecutive micro-batches whose token counts add up to at most maxTokens (dynamic batching); a
 * single sequence longer than maxTokens gets a micro-batch of its own rather than being dropped.
 */
export function splitByTokenBudget(lengths: readonly number[], maxTokens: number): number[][] {
  checkSize('splitByTokenBudget', maxTokens);
  const out: number[][] = [];
  let current: number[] = [];
  let tokens = 0;
  lengths.forEach((len, i) => {
    if (current.length && tokens + len > maxTokens) {
      out.push(current);
      current = [];
      tokens = 0;
    }
    current.push(i);
    tokens += len;
  });
  if (current.length) out.push(current);
  return out;
}
