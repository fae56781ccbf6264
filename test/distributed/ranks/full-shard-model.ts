// The model the full-sharding tests train: small enough for seconds per run, with units of many
// pages each, so that memory measured in whole pages shows what each rank keeps.
import type { Qwen3Config } from '../../../src/engine/model.js';

export const fsdpConfig: Qwen3Config = {
  vocabSize: 512,
  hiddenSize: 64,
  intermediateSize: 192,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: false,
};
export const FSDP_STEPS = 3;
/** Norms are exempt from weight decay, so shards spanning a norm and a matrix need both decays right. */
export const noDecay = (name: string) => name.endsWith('norm.weight');
