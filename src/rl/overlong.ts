// DAPO's soft overlong punishment (arXiv 2503.14476, "overlong reward shaping"): responses longer
// than max_response_length - buffer lose reward linearly, up to penalty_factor at the hard limit,
// so the policy learns to stay short of truncation instead of being cut off with a full penalty.

export interface OverlongOptions {
  /** data.max_response_length: the generation limit in tokens. */
  maxResponseLength: number;
  /** Tokens before the limit where the penalty ramps from 0 to penaltyFactor. */
  bufferLength: number;
  /** The penalty at (and beyond) the limit. */
  penaltyFactor: number;
}

/** The penalty (<= 0) to add to the reward of a response of `length` tokens. */
export function overlongPenalty(length: number, o: OverlongOptions): number {
  if (!(o.bufferLength > 0) || o.bufferLength > o.maxResponseLength) {
    throw new RangeError(
      `overlongPenalty: bufferLength must be in (0, maxResponseLength = ${o.maxResponseLength}], got ${o.bufferLength}`,
    );
  }
  const exceed = length - (o.maxResponseLength - o.bufferLength);
  return Math.min(0, (-exceed / o.bufferLength) * o.penaltyFactor);
}

/** Adds the penalty to each score; metrics: how many were penalised and the mean penalty. */
export function shapeOverlongRewards(
  scores: readonly number[],
  responseLengths: readonly number[],
  o: OverlongOptions,
): {
  scores: number[];
  penalties: number[];
  metrics: { 'overlong/penalized_ratio': number; 'overlong/penalty_mean': number };
} {
  if (scores.length !== responseLengths.length)
    throw new RangeError(
      `shapeOverlongRewards: scores has ${scores.length} entries but responseLengths has ${responseLengths.length}`,
    );
  const penalties = responseLengths.map((len) => overlongPenalty(len, o));
  const n = penalties.length;
  return {
    scores: scores.map((s, i) => s + penalties[i]),
    penalties,
    metrics: {
      'overlong/penalized_ratio': n ? penalties.filter((p) => p < 0).length / n : 0,
      'overlong/penalty_mean': n ? penalties.reduce((s, p) => s + p, 0) / n : 0,
    },
  };
}
