// Micro-batches of one rank's share of a batch. Fully sharded, every forward and backward runs
// collectives (each unit is all-gathered, its gradients reduce-scattered), so every rank must run
// the same number of passes: a rank with fewer samples than the others pads its list with empty
// passes (null), which run the model on one dummy token and back-propagate a zero gradient.
import { packSequences, type Model } from '../engine/model.js';
import { isFullShard } from '../engine/full-shard.js';
import type { World } from '../engine/world.js';
import { splitIntoBatches } from '../rl/batching.js';

/**
 * `mine` (this rank's World.share of `total` items) in consecutive batches of at most `size`;
 * fully sharded over several ranks, padded with nulls to as many batches as rank 0 (which has the
 * most items, ceil(total / ranks)) makes.
 */
export function microBatches<T>(model: Model, mine: readonly T[], size: number, total: number, world?: World) {
  const batches: (T[] | null)[] = splitIntoBatches(mine.length, size).map((idx) => idx.map((i) => mine[i]));
  if (!world || world.size === 1 || !isFullShard(model)) return batches;
  const most = Math.ceil(Math.ceil(total / world.size) / size);
  while (batches.length < most) batches.push(null);
  return batches;
}

/**
 * A pass that takes part in the collectives and changes nothing: one dummy token, zero gradient. A
 * mixture of experts' load-balancing loss would still give the dummy token's routing a gradient, so its
 * weight is 0 for this backward (the next real pass sets it again: RoutingTally.afterForward). A Qwen3-VL
 * model's tower is gathered and its gradients reduced (zeros here) by every pass alike (the engine's rule
 * under full sharding), so the ranks' collectives match whether or not a micro-batch holds images.
 */
export async function emptyPass(model: Model, training: boolean): Promise<void> {
  const { logp } = await model.forward(packSequences([[0, 0]]), { training });
  if (!training) return;
  if (model.config.numExperts) model.setAuxLossWeight(0);
  await model.backward({ dlogp: new Float32Array(logp.length) });
}
