// Bounded concurrency for the phases: at most `limit` samples in flight, each started as soon as
// another finishes (a fixed-size batch would wait for its slowest sample).
export async function forEachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  if (!(Number.isInteger(limit) && limit >= 1)) throw new Error(`concurrency must be a positive integer, got ${limit}`);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
