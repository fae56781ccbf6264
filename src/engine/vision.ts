// Typed face of the Qwen3-VL vision ops (native/ops/layernorm, gelu, vision_rope, vision_pos_embed)
// and of the whole vision tower (native/model/qwen3_vl_vision.h). Synchronous, float32, on the CPU;
// bad input throws an Error naming the function and the argument. Backward functions return fresh
// gradients.
import { native } from './native.js';
import { type OpBackend, runOp } from './ops.js';

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
  /** A patch is inChannels x temporalPatchSize x patchSize x patchSize values (3*2*16*16 = 1536). */
  inChannels: number;
  temporalPatchSize: number;
  patchSize: number;
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
  visionParameters(c: VisionTowerConfig): VisionParameter[];
  visionTowerForward(
    params: Float32Array[],
    pixels: Float32Array,
    grids: Int32Array,
    c: VisionTowerConfig,
    o?: TowerOptions,
  ): VisionTowerOutput;
  visionTowerBackward(
    params: Float32Array[],
    pixels: Float32Array,
    grids: Int32Array,
    c: VisionTowerConfig,
    dMerged: Float32Array,
    dDeepstack: Float32Array[],
    o?: TowerOptions,
  ): Float32Array[];
}

const ops = native<VisionAddon>();

/** torch.nn.LayerNorm over the last dimension: (x - mean) / sqrt(var + eps) * w + b. */
export function layernormForward(
  x: Float32Array,
  w: Float32Array,
  b: Float32Array,
  o: LayernormOptions & { eps: number },
): LayernormForwardResult {
  const { out, mean, rstd } = runOp<LayernormForwardResult>('layernorm.forward', 'cpu', { x, w, b }, o);
  return { out, mean, rstd };
}
export function layernormBackward(
  dout: Float32Array,
  x: Float32Array,
  w: Float32Array,
  mean: Float32Array,
  rstd: Float32Array,
  o: LayernormOptions,
): LayernormBackwardResult {
  const r = runOp<LayernormBackwardResult>('layernorm.backward', 'cpu', { dout, x, w, mean, rstd }, o);
  return { dx: r.dx, dw: r.dw, db: r.db };
}

/** GELU element-wise: 'tanh' is gelu_pytorch_tanh (the blocks), 'erf' is nn.GELU() (the mergers). */
export function geluForward(x: Float32Array, kind: GeluKind): Float32Array {
  return runOp<{ out: Float32Array }>('gelu.forward', 'cpu', { x }, { kind }).out;
}
export function geluBackward(dout: Float32Array, x: Float32Array, kind: GeluKind): Float32Array {
  return runOp<{ dx: Float32Array }>('gelu.backward', 'cpu', { dout, x }, { kind }).dx;
}

/** 2D rotary of the vision attention; coords is [T, 2] (row, column) of each patch. */
export function visionRopeForward(x: Float32Array, coords: Int32Array, o: VisionRopeOptions): Float32Array {
  return runOp<{ out: Float32Array }>('vision_rope.forward', 'cpu', { x, coords }, o).out;
}
export function visionRopeBackward(dout: Float32Array, coords: Int32Array, o: VisionRopeOptions): Float32Array {
  return runOp<{ dx: Float32Array }>('vision_rope.backward', 'cpu', { dout, coords }, o).dx;
}

/** The position table bilinearly interpolated to each grid ((t, h, w) triples), in merge-block order. */
export function visionPosEmbedForward(table: Float32Array, grids: Int32Array, o: PosEmbedOptions): Float32Array {
  return runOp<{ out: Float32Array }>('vision_pos_embed.forward', 'cpu', { table }, { ...o, grids }).out;
}
export function visionPosEmbedBackward(dout: Float32Array, grids: Int32Array, o: PosEmbedOptions): Float32Array {
  return runOp<{ dtable: Float32Array }>('vision_pos_embed.backward', 'cpu', { dout }, { ...o, grids }).dtable;
}

/** The tower's parameters in the order the tower functions take them. */
export function visionParameters(c: VisionTowerConfig): VisionParameter[] {
  return ops.visionParameters(c);
}

/** Values per patch row of the pixel input: inChannels * temporalPatchSize * patchSize^2. */
export function patchInputs(c: VisionTowerConfig): number {
  return c.inChannels * c.temporalPatchSize * c.patchSize ** 2;
}

/** Where the whole tower runs: the CPU backend (the default) or the CUDA one, with copies of the arrays. */
export interface TowerOptions {
  backend?: OpBackend;
}

/** pixels: [patches, patchInputs] rows in merge-block order; grids: (t, h, w) per image. */
export function visionTowerForward(
  params: Float32Array[],
  pixels: Float32Array,
  grids: Int32Array,
  c: VisionTowerConfig,
  o: TowerOptions = {},
): VisionTowerOutput {
  return ops.visionTowerForward(params, pixels, grids, c, o);
}

/** Gradients (visionParameters order) of sum(dMerged * merged) + sum_k sum(dDeepstack[k] * deepstack[k]). */
export function visionTowerBackward(
  params: Float32Array[],
  pixels: Float32Array,
  grids: Int32Array,
  c: VisionTowerConfig,
  dMerged: Float32Array,
  dDeepstack: Float32Array[],
  o: TowerOptions = {},
): Float32Array[] {
  return ops.visionTowerBackward(params, pixels, grids, c, dMerged, dDeepstack, o);
}
