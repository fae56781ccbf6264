// Typed face of the Qwen3-VL vision ops (native/ops/layernorm, gelu, vision_rope, vision_pos_embed)
// and of the whole vision tower (native/model/qwen3_vl_vision.h). Synchronous, float32, on the CPU;
// bad input throws an Error naming the function and the argument. Backward functions return fresh
// gradients.
import { native } from './native.js';

export interface LayernormOptions {
  rows: number;
  dim: number;
}
export interface LayernormForwardResult {
  out: Float32Array;
  /** Row means and 1/sqrt(var + eps), [rows]: what backward needs. */
  mean: Float32Array;
  rstd: Float32Array;
}
export interface LayernormBackwardResult {
  dx: Float32Array;
  dw: Float32Array;
  db: Float32Array;
}
export type GeluKind = 'tanh' | 'erf';
export interface VisionRopeOptions {
  T: number;
  heads: number;
  /** Multiple of 4: a quarter of the head's rotations follow the row, a quarter the column. */
  headDim: number;
  theta?: number;
}
export interface PosEmbedOptions {
  merge: number;
  /** sqrt(num_position_embeddings): the table is side x side rows of dim. */
  side: number;
  dim: number;
}

/** The vision tower's shape, from Hugging Face's vision_config (see visionConfigFromHf). */
export interface VisionTowerConfig {
  depth: number;
  hiddenSize: number;
  numHeads: number;
  intermediateSize: number;
  outHiddenSize: number;
  /** in_channels * temporal_patch_size * patch_size^2 (3*2*16*16 = 1536). */
  patchInputs: number;
  spatialMergeSize: number;
  /** sqrt(num_position_embeddings). */
  positionSide: number;
  deepstackIndexes: number[];
  ropeTheta?: number;
  eps?: number;
}
export interface VisionParameter {
  /** Hugging Face name without the "model.visual." prefix. */
  name: string;
  shape: number[];
}
export interface VisionTowerOutput {
  /** [tokens, outHiddenSize]: the merger's output, one row per image token. */
  merged: Float32Array;
  /** One [tokens, outHiddenSize] per deepstack merger. */
  deepstack: Float32Array[];
  /** [patches, hiddenSize]: patch embedding before the position table is added. */
  patchEmbed: Float32Array;
  /** [patches, hiddenSize]: each block's output. */
  blocks: Float32Array[];
}

interface VisionAddon {
  layernormForward(x: Float32Array, w: Float32Array, b: Float32Array, o: LayernormOptions & { eps: number }):
    LayernormForwardResult;
  layernormBackward(dout: Float32Array, x: Float32Array, w: Float32Array, mean: Float32Array, rstd: Float32Array,
    o: LayernormOptions): LayernormBackwardResult;
  geluForward(x: Float32Array, o: { kind: GeluKind }): Float32Array;
  geluBackward(dout: Float32Array, x: Float32Array, o: { kind: GeluKind }): Float32Array;
  visionRopeForward(x: Float32Array, coords: Int32Array, o: VisionRopeOptions): Float32Array;
  visionRopeBackward(dout: Float32Array, coords: Int32Array, o: VisionRopeOptions): Float32Array;
  visionPosEmbedForward(table: Float32Array, grids: Int32Array, o: PosEmbedOptions): Float32Array;
  visionPosEmbedBackward(dout: Float32Array, grids: Int32Array, o: PosEmbedOptions): Float32Array;
  visionParameters(c: VisionTowerConfig): VisionParameter[];
  visionTowerForward(params: Float32Array[], pixels: Float32Array, grids: Int32Array, c: VisionTowerConfig):
    VisionTowerOutput;
  visionTowerBackward(params: Float32Array[], pixels: Float32Array, grids: Int32Array, c: VisionTowerConfig,
    dMerged: Float32Array, dDeepstack: Float32Array[]): Float32Array[];
}

const ops = native<VisionAddon>();

/** torch.nn.LayerNorm over the last dimension: (x - mean) / sqrt(var + eps) * w + b. */
export function layernormForward(x: Float32Array, w: Float32Array, b: Float32Array,
  o: LayernormOptions & { eps: number }): LayernormForwardResult {
  return ops.layernormForward(x, w, b, o);
}
export function layernormBackward(dout: Float32Array, x: Float32Array, w: Float32Array, mean: Float32Array,
  rstd: Float32Array, o: LayernormOptions): LayernormBackwardResult {
  return ops.layernormBackward(dout, x, w, mean, rstd, o);
}

/** GELU element-wise: 'tanh' is gelu_pytorch_tanh (the blocks), 'erf' is nn.GELU() (the mergers). */
export function geluForward(x: Float32Array, kind: GeluKind): Float32Array {
  return ops.geluForward(x, { kind });
}
export function geluBackward(dout: Float32Array, x: Float32Array, kind: GeluKind): Float32Array {
  return ops.geluBackward(dout, x, { kind });
}

/** 2D rotary of the vision attention; coords is [T, 2] (row, column) of each patch. */
export function visionRopeForward(x: Float32Array, coords: Int32Array, o: VisionRopeOptions): Float32Array {
  return ops.visionRopeForward(x, coords, o);
}
export function visionRopeBackward(dout: Float32Array, coords: Int32Array, o: VisionRopeOptions): Float32Array {
  return ops.visionRopeBackward(dout, coords, o);
}

/** The position table bilinearly interpolated to each grid ((t, h, w) triples), in merge-block order. */
export function visionPosEmbedForward(table: Float32Array, grids: Int32Array, o: PosEmbedOptions): Float32Array {
  return ops.visionPosEmbedForward(table, grids, o);
}
export function visionPosEmbedBackward(dout: Float32Array, grids: Int32Array, o: PosEmbedOptions): Float32Array {
  return ops.visionPosEmbedBackward(dout, grids, o);
}

/** The tower's parameters in the order the tower functions take them. */
export function visionParameters(c: VisionTowerConfig): VisionParameter[] {
  return ops.visionParameters(c);
}

/** pixels: [patches, patchInputs] rows in merge-block order; grids: (t, h, w) per image. */
export function visionTowerForward(params: Float32Array[], pixels: Float32Array, grids: Int32Array,
  c: VisionTowerConfig): VisionTowerOutput {
  return ops.visionTowerForward(params, pixels, grids, c);
}

/** Gradients (visionParameters order) of sum(dMerged * merged) + sum_k sum(dDeepstack[k] * deepstack[k]). */
export function visionTowerBackward(params: Float32Array[], pixels: Float32Array, grids: Int32Array,
  c: VisionTowerConfig, dMerged: Float32Array, dDeepstack: Float32Array[]): Float32Array[] {
  return ops.visionTowerBackward(params, pixels, grids, c, dMerged, dDeepstack);
}

/** The tower's shape from a Qwen3-VL config.json's vision_config; names the field that is missing. */
export function visionConfigFromHf(v: Record<string, unknown>, where: string): VisionTowerConfig {
  const int = (key: string): number => {
    const x = v[key];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1)
      throw new Error(`${where}: vision_config.${key} must be a positive integer, got ${JSON.stringify(x)}`);
    return x;
  };
  const side = Math.round(Math.sqrt(int('num_position_embeddings')));
  if (side * side !== v.num_position_embeddings)
    throw new Error(`${where}: vision_config.num_position_embeddings must be a square, got ${v.num_position_embeddings}`);
  const act = v.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh')
    throw new Error(`${where}: vision_config.hidden_act ${JSON.stringify(act)} is not supported (gelu_pytorch_tanh)`);
  const ds = v.deepstack_visual_indexes ?? [];
  if (!Array.isArray(ds) || !ds.every((i) => Number.isInteger(i)))
    throw new Error(`${where}: vision_config.deepstack_visual_indexes must be an array of integers`);
  const rope = (v.rope_parameters ?? {}) as Record<string, unknown>;
  return {
    depth: int('depth'),
    hiddenSize: int('hidden_size'),
    numHeads: int('num_heads'),
    intermediateSize: int('intermediate_size'),
    outHiddenSize: int('out_hidden_size'),
    patchInputs: int('in_channels') * int('temporal_patch_size') * int('patch_size') ** 2,
    spatialMergeSize: int('spatial_merge_size'),
    positionSide: side,
    deepstackIndexes: ds as number[],
    ropeTheta: typeof rope.rope_theta === 'number' ? rope.rope_theta : 10000,
  };
}
