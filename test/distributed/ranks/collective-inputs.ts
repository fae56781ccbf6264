// The inputs of the collective tests, shared by the ranks (ranks/collective-ops.ts) and the test
// that checks their results: small integers and halves, so float32 sums of a few ranks are exact.
export const SHARD = 5;
export const input = (rank: number, i: number) => (rank + 1) * (i + 1) + 0.5 * rank;
