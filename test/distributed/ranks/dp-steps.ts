// A few optimizer steps of a tiny model on a fixed batch, in one process or as one rank of a
// data-parallel world (each rank back-propagating its share of the sequences), so the tests can
// compare the two.
import { Model, packSequences, type Qwen3Config } from '../../../src/engine/model.js';
import { AdamW, type AdamWOptions } from '../../../src/engine/optimizer.js';
import { sftLoss } from '../../../src/rl/sft-loss.js';
import type { World } from '../../../src/engine/world.js';

export const config: Qwen3Config = {
  vocabSize: 40,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 8,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: false,
};

const batch = [
  [1, 5, 9, 13, 17, 21],
  [2, 4, 8, 16, 32],
  [3, 6, 9, 12, 15, 18, 21],
  [7, 14, 21, 28],
  [11, 22, 33],
];
const tokensOf = (seqs: number[][]) => seqs.reduce((n, s) => n + s.length - 1, 0);

/**
 * Trains `steps` steps; returns each step's gradient norm. The model must be data parallel (or fully
 * sharded) over `world` when given. `noDecay` exempts parameters from weight decay.
 */
export async function trainSteps(
  model: Model,
  steps: number,
  world?: World,
  noDecay?: AdamWOptions['noDecay'],
): Promise<number[]> {
  const opt = new AdamW(model, { lr: 0.05, weightDecay: 0.1, maxGradNorm: 0.5, noDecay });
  const mine = world ? world.share(batch) : batch;
  const norms: number[] = [];
  for (let i = 0; i < steps; i++) {
    model.zeroGrad();
    if (mine.length > 0) {
      const packed = packSequences(mine);
      const mask = Float32Array.from(packed.targets, (x) => (x >= 0 ? 1 : 0));
      const { logp } = await model.forward(packed, { training: true });
      // Normalised by the whole batch's tokens, so the ranks' gradients add up to the batch's.
      await model.backward({
        dlogp: sftLoss(logp, mask, packed.cuSeqlens, { agg: 'token-mean', globalTokens: tokensOf(batch) }).dlogp,
      });
    }
    norms.push((await opt.step()).gradNorm);
  }
  return norms;
}

export const freshModel = () => Model.create(config, { seed: 5 });
