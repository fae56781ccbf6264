// Shared pieces of the generation tests: a tiny random Qwen3 and a character tokenizer over its
// vocabulary, so text, stop strings and streaming can be checked without model files.
import { Model, packSequences } from '../../src/engine/model.js';
import type { PackedBatch, Qwen3Config } from '../../src/engine/model.js';
import { stackImages, type ProcessedImage } from '../../src/model/vision/image-processor.js';
import { multimodalPositions } from '../../src/model/vision/rope-index.js';
import type { TextTokenizer } from '../../src/tokenizer/types.js';

export const VOCAB = 48;
const EOS = 0;

export const tinyConfig: Qwen3Config = {
  vocabSize: VOCAB,
  hiddenSize: 32,
  intermediateSize: 64,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 8,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: false,
};

/** initStd 0.3 spreads the logits, so greedy choices are not decided by rounding-level ties. */
export function tinyModel(seed = 1, overrides: Partial<Qwen3Config> = {}): Model {
  return Model.create({ ...tinyConfig, ...overrides }, { seed, initStd: 0.3 });
}

// id 0 is the special EOS token; id i > 0 is one character.
const CHARS = ' abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST.,';

export const charTokenizer: TextTokenizer = {
  vocabSize: VOCAB,
  eosTokenIds: [EOS],
  padTokenId: null,
  encode: (text) =>
    Array.from(text, (ch) => {
      const i = CHARS.indexOf(ch);
      if (i < 0 || i + 1 >= VOCAB) throw new Error(`charTokenizer: no token for '${ch}'`);
      return i + 1;
    }),
  decode: (ids, options) =>
    Array.from(ids, (id) => (id === EOS ? (options?.skipSpecialTokens ? '' : '<eos>') : CHARS[id - 1])).join(''),
  applyChatTemplate: () => {
    throw new Error('charTokenizer has no chat template');
  },
};

/** Index of the largest value of row r of a [rows, V] array (lowest index on ties). */
export function argmaxRow(logits: Float32Array, r: number, V: number): number {
  let best = 0;
  for (let j = 1; j < V; j++) if (logits[r * V + j] > logits[r * V + best]) best = j;
  return best;
}

/**
 * The full forward's batch for one sequence; with a vision model, its images and get_rope_index's
 * positions over the whole sequence (the prompt and everything generated after it).
 */
export function fullBatch(model: Model, seq: number[], images: ProcessedImage[] = []): PackedBatch {
  const batch = packSequences([seq]);
  const { vision, imageTokenId } = model.config;
  if (!vision || imageTokenId === undefined) return batch;
  const { grids, pixels } = stackImages(images);
  const positions = multimodalPositions(batch.tokens, grids, { imageTokenId, merge: vision.spatialMergeSize });
  return images.length > 0 ? { ...batch, positions, imageGrids: grids, pixels } : { ...batch, positions };
}

/** `promptIds` continued greedily by full forwards, one token at a time: what KV-cache decoding must give. */
export async function greedyByFullForwards(
  model: Model,
  promptIds: number[],
  steps: number,
  images: ProcessedImage[] = [],
): Promise<number[]> {
  const seq = [...promptIds];
  for (let k = 0; k < steps; k++) {
    const { logits } = await model.forward(fullBatch(model, seq, images), { logits: true });
    seq.push(argmaxRow(logits!, seq.length - 1, model.config.vocabSize));
  }
  return seq;
}
