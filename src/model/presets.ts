// Named shapes of randomly initialised Qwen3 models (`medix create-model`): how users and tests get
// a model without downloading a checkpoint. The vocabulary is the caller's to give: the tokenizer's
// size, so that every id the model can sample decodes.
import { Model, type Qwen3Config } from '../engine/model.js';

/**
 * The vision token ids of a Qwen3 tokenizer whose <|image_pad|> is `image`: it numbers <|vision_start|>,
 * <|vision_end|>, <|vision_pad|>, <|image_pad|>, <|video_pad|> consecutively.
 */
export function visionTokenIds(image: number) {
  return { visionStart: image - 3, visionEnd: image - 2, image, video: image + 1 } as const;
}

/** The vision token ids of the Qwen3 tokenizer. */
export const QWEN_VL_TOKENS = visionTokenIds(151655);

export type ModelShape = Omit<Qwen3Config, 'vocabSize'>;

/** tiny with a small Qwen3-VL vision tower (images in, one deepstack merger): the visual quickstart's size. */
const TINY_VL = {
  hiddenSize: 64,
  intermediateSize: 128,
  numLayers: 2,
  numHeads: 4,
  numKvHeads: 2,
  headDim: 16,
  ropeTheta: 5e6,
  rmsEps: 1e-6,
  tieEmbeddings: true,
  mropeSection: [4, 2, 2],
  mropeInterleaved: true,
  prefix: 'model.language_model.',
  imageTokenId: QWEN_VL_TOKENS.image,
  vision: {
    depth: 2,
    hiddenSize: 32,
    numHeads: 2,
    intermediateSize: 64,
    outHiddenSize: 64,
    inChannels: 3,
    temporalPatchSize: 2,
    patchSize: 16,
    spatialMergeSize: 2,
    positionSide: 8,
    deepstackIndexes: [0],
  },
} as const satisfies ModelShape;

/** 8 experts, 2 per token, renormalised, as Qwen3-30B-A3B routes. */
const TINY_EXPERTS = {
  numExperts: 8,
  numExpertsPerTok: 2,
  moeIntermediateSize: 32,
  decoderSparseStep: 1,
  normTopkProb: true,
  routerAuxLossCoef: 0.001,
} as const;

export const MODEL_PRESETS = {
  /** The quickstart's size: loads, generates and trains in seconds (the embedding is most of it). */
  tiny: {
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    ropeTheta: 1e6,
    rmsEps: 1e-6,
    tieEmbeddings: true,
  },
  /** Wider and deeper, Qwen3's head_dim proportions at a size a CPU still runs fast. */
  small: {
    hiddenSize: 256,
    intermediateSize: 768,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 64,
    ropeTheta: 1e6,
    rmsEps: 1e-6,
    tieEmbeddings: true,
  },
  'tiny-vl': TINY_VL,
  /** small with a 4-block tower and two deepstack mergers. */
  'small-vl': {
    hiddenSize: 256,
    intermediateSize: 768,
    numLayers: 4,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 64,
    ropeTheta: 5e6,
    rmsEps: 1e-6,
    tieEmbeddings: true,
    mropeSection: [12, 10, 10],
    mropeInterleaved: true,
    prefix: 'model.language_model.',
    imageTokenId: QWEN_VL_TOKENS.image,
    vision: {
      depth: 4,
      hiddenSize: 128,
      numHeads: 4,
      intermediateSize: 512,
      outHiddenSize: 256,
      inChannels: 3,
      temporalPatchSize: 2,
      patchSize: 16,
      spatialMergeSize: 2,
      positionSide: 16,
      deepstackIndexes: [1, 2],
    },
  },
  /** tiny with a Qwen3-MoE block in every layer. */
  'tiny-moe': {
    hiddenSize: 64,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 16,
    ropeTheta: 1e6,
    rmsEps: 1e-6,
    tieEmbeddings: true,
    ...TINY_EXPERTS,
  },
  /**
   * tiny-vl on tiny-moe's experts (Qwen3-VL-MoE, which always renormalises the top-k weights).
   * moe_intermediate_size 48, not 32: with 2I == H the fused gate_up_proj [E, H, 2I] Qwen3-VL-MoE
   * files hold is square, and transformers 5 then cannot tell that it needs transposing.
   */
  'tiny-vl-moe': { ...TINY_VL, ...TINY_EXPERTS, moeIntermediateSize: 48 },
} as const satisfies Record<string, ModelShape>;

export type ModelPreset = keyof typeof MODEL_PRESETS;

export const MODEL_PRESET_NAMES = Object.keys(MODEL_PRESETS) as ModelPreset[];

/** A model of the preset's shape, initialised as Model.create does: the same seed gives the same weights. */
export function createRandomModel(
  preset: ModelPreset,
  options: { vocabSize: number; seed?: number; initStd?: number; imageTokenId?: number },
): Model {
  const shape = { ...(MODEL_PRESETS[preset] as ModelShape) };
  if (shape.imageTokenId !== undefined && options.imageTokenId !== undefined) shape.imageTokenId = options.imageTokenId;
  const vision = shape.vision ? { ...shape.vision, deepstackIndexes: [...shape.vision.deepstackIndexes] } : undefined;
  const mropeSection = shape.mropeSection ? [...shape.mropeSection] : undefined;
  const config = { ...shape, vision, mropeSection, vocabSize: options.vocabSize };
  return Model.create(config, { seed: options.seed ?? 0, initStd: options.initStd });
}
