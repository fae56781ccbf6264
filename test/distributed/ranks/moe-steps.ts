// Three supervised updates of a tiny-moe-shaped model (small vocabulary) through the trainer's
// update code (sftUpdate: micro-batches, the load-balancing loss, the routing tally), in one
// process or as one rank of a data-parallel world (each rank taking its share of every
// mini-batch; data parallel or fully sharded), so the distributed MoE test can compare them.
import type { Model } from '../../../src/engine/model.js';
import { AdamW } from '../../../src/engine/optimizer.js';
import type { World } from '../../../src/engine/world.js';
import { createRandomModel } from '../../../src/model/presets.js';
import type { Experience } from '../../../src/train/experience.js';
import { sftUpdate, type UpdateMetrics } from '../../../src/train/update.js';

export const STEPS = 3;
const VOCAB = 64;

/** Six sequences of unequal lengths, so the two ranks' shares differ in size. */
function experiences(): Experience[] {
  let s = 12345;
  const next = () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s % VOCAB;
  };
  return [5, 9, 3, 7, 11, 4].map((n) => ({
    promptIds: Array.from({ length: 3 }, next),
    responseIds: Array.from({ length: n }, next),
  }));
}

export const freshMoeModel = (): Model => createRandomModel('tiny-moe', { vocabSize: VOCAB, seed: 4, initStd: 0.1 });

/**
 * Trains STEPS optimizer steps (one mini-batch of all six sequences each, in micro-batches of
 * `microBatch` per rank); returns each step's metrics.
 */
export async function moeSteps(model: Model, world?: World, microBatch = 2): Promise<UpdateMetrics[]> {
  const opt = new AdamW(model, { lr: 1e-2, weightDecay: 0 });
  const exps = experiences();
  const metrics: UpdateMetrics[] = [];
  const options = { miniBatch: 6, microBatch, epochs: 1, temperature: 1, lr: () => 1e-2, world };
  for (let i = 0; i < STEPS; i++) metrics.push(await sftUpdate(model, opt, exps, options));
  return metrics;
}
