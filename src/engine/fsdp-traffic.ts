// The bandwidth model of full sharding (src/engine/full-shard.ts): what one rank sends per
// optimizer step, and the time that takes on a ring at a given bus bandwidth, before any overlap
// with compute. Each unit's weights are all-gathered twice (before its forward and again before
// its backward) and its fp32 gradients reduce-scattered once; a ring collective moves (N - 1)/N of
// the whole buffer through each rank.

export interface FsdpTrafficInput {
  parameters: number;
  /** Bytes per gathered parameter: 4 (fp32, as the CPU engine gathers) or 2 (bf16 compute weights). */
  gatherBytesPerParameter: number;
  ranks: number;
  /** The slowest link of the ring, in bytes per second. */
  busBytesPerSecond: number;
}

export interface FsdpTraffic {
  allgatherBytes: number;
  reduceScatterBytes: number;
  seconds: number;
}

/** Per step and per rank: 2 × P × gather bytes all-gathered + 4 × P reduce-scattered, × (N − 1)/N. */
export function fsdpStepTraffic(x: FsdpTrafficInput): FsdpTraffic {
  const ringShare = (x.ranks - 1) / x.ranks;
  const allgatherBytes = 2 * x.parameters * x.gatherBytesPerParameter * ringShare;
  const reduceScatterBytes = 4 * x.parameters * ringShare; // gradients land in fp32 master slices
  return { allgatherBytes, reduceScatterBytes, seconds: (allgatherBytes + reduceScatterBytes) / x.busBytesPerSecond };
}
