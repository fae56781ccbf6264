// Prompt groups: the responses sampled for one prompt share a group id. Estimators, the DAPO filter
// and batch splitting all work per group, so the grouping and the per-group statistics live here.

/** Sample indices of each group, in order of first appearance (a Map keeps insertion order). */
export function groupIndices(groups: readonly (number | string)[]): Map<number | string, number[]> {
  const byGroup = new Map<number | string, number[]>();
  groups.forEach((g, i) => {
    const idx = byGroup.get(g);
    if (idx) idx.push(i);
    else byGroup.set(g, [i]);
  });
  return byGroup;
}

export function mean(xs: readonly number[]): number {
  return xs.length === 0 ? 0 : xs.reduce((s, x) => s + x, 0) / xs.length;
}

/** Standard deviation; `unbiased` divides by n - 1 (torch.std's default), else by n. 0 for too few values. */
export function std(xs: readonly number[], unbiased: boolean): number {
  const d = unbiased ? xs.length - 1 : xs.length;
  if (d <= 0) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / d);
}

/** Mean, min and max of a list, as step metrics (0 for an empty list, so metrics stay finite). */
export function summary(xs: readonly number[]): { mean: number; min: number; max: number } {
  if (xs.length === 0) return { mean: 0, min: 0, max: 0 };
  let min = Infinity;
  let max = -Infinity;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  return { mean: mean(xs), min, max };
}

/** Throws when two arrays that describe the same samples differ in length (a caller's bug, named). */
export function checkSameLength(
  what: string,
  a: { length: number },
  b: { length: number },
  aName: string,
  bName: string,
): void {
  if (a.length !== b.length)
    throw new RangeError(`${what}: ${aName} has ${a.length} entries but ${bName} has ${b.length}`);
}
