// The smallest Qwen3 engine config the checkpoint tests save and load (a 32-token vocabulary, one layer).
import type { Qwen3Config } from '../../src/engine/model.js';

export const tinyQwen3Config: Qwen3Config = {
  vocabSize: 32,
  hiddenSize: 16,
  intermediateSize: 16,
  numLayers: 1,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 8,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: true,
};
