// Typed face of the layer ops of the Qwen3 decoder, one op at a time (native/ops/*.h,
// native/bindings/layer_ops.cc): embedding, RMSNorm, linear, rotary embedding, SwiGLU, residual add.
// All run synchronously on the CPU in float32 and are deterministic (same inputs, same bits).
// Arguments are checked natively; bad input throws an Error naming the function and the argument.
// Backward functions return fresh gradients (zeroed, then accumulated).
import { native } from './native.js';

export interface EmbeddingOptions {
  vocab: number;
  dim: number;
}

export interface RmsnormOptions {
  /** Number of normalised vectors (tokens, or tokens*heads for the per-head q/k norm). */
  rows: number;
  /** Length of each vector. */
  dim: number;
}

export interface RmsnormForwardOptions extends RmsnormOptions {
  /** Added to mean(x^2) before the square root (Qwen3: rms_norm_eps, e.g. 1e-6). */
  eps: number;
}

export interface RmsnormForwardResult {
  /** [rows, dim] */
  out: Float32Array;
  /** 1/sqrt(mean(x^2) + eps) per row, [rows]: what backward needs. */
  rstd: Float32Array;
}

export interface RmsnormBackwardResult {
  dx: Float32Array;
  dw: Float32Array;
}

export interface LinearOptions {
  /** Tokens (rows of x). */
  T: number;
  in: number;
  out: number;
}

export interface LinearBackwardOptions extends LinearOptions {
  /** Also return the bias gradient. */
  bias?: boolean;
}

export interface LinearBackwardResult {
  dx: Float32Array;
  dW: Float32Array;
  /** Present when options.bias was true. */
  db?: Float32Array;
}

export interface RopeOptions {
  /** Tokens. */
  T: number;
  /** Heads per token; x is [T, heads, headDim]. */
  heads: number;
  /** Even; element j of a head is paired with element j + headDim/2. */
  headDim: number;
  /** Base of the frequencies theta^(-2j/headDim) (Qwen3: rope_theta). */
  theta: number;
  /**
   * Multi-section rope (Qwen2-VL / Qwen3-VL): [time, height, width] frequency counts summing to
   * headDim/2. Positions are then [3, T]; without sections they are [T].
   */
  sections?: number[];
  /** With sections: interleave them across frequencies (Qwen3-VL) instead of contiguous (Qwen2-VL). */
  interleaved?: boolean;
}

export interface RopeForwardOptions extends RopeOptions {
  /** Rotate x itself and return it instead of a new array. */
  inPlace?: boolean;
}

export interface SwigluBackwardResult {
  dgate: Float32Array;
  dup: Float32Array;
}

interface LayerOpsAddon {
  embeddingForward(ids: Int32Array, table: Float32Array, o: EmbeddingOptions): Float32Array;
  embeddingBackward(dout: Float32Array, ids: Int32Array, o: EmbeddingOptions): Float32Array;
  rmsnormForward(x: Float32Array, w: Float32Array, o: RmsnormForwardOptions): RmsnormForwardResult;
  rmsnormBackward(
    dout: Float32Array,
    x: Float32Array,
    w: Float32Array,
    rstd: Float32Array,
    o: RmsnormOptions,
  ): RmsnormBackwardResult;
  linearForward(x: Float32Array, W: Float32Array, b: Float32Array | null, o: LinearOptions): Float32Array;
  linearBackward(dy: Float32Array, x: Float32Array, W: Float32Array, o: LinearBackwardOptions): LinearBackwardResult;
  ropeForward(x: Float32Array, pos: Int32Array, o: RopeForwardOptions): Float32Array;
  ropeBackward(dout: Float32Array, pos: Int32Array, o: RopeOptions): Float32Array;
  ropeSectionMap(headDim: number, sections: number[], interleaved: boolean): Uint8Array;
  swigluForward(gate: Float32Array, up: Float32Array): Float32Array;
  swigluBackward(dout: Float32Array, gate: Float32Array, up: Float32Array): SwigluBackwardResult;
  addForward(a: Float32Array, b: Float32Array): Float32Array;
  addInplace(dst: Float32Array, src: Float32Array): Float32Array;
}

const ops = native<LayerOpsAddon>();

/** out[i, :] = table[ids[i], :]; table is [vocab, dim], out is [ids.length, dim]. */
export function embeddingForward(ids: Int32Array, table: Float32Array, o: EmbeddingOptions): Float32Array {
  return ops.embeddingForward(ids, table, o);
}

/** Gradient of the table, [vocab, dim]: row ids[i] receives dout[i, :] (repeated ids add up). */
export function embeddingBackward(dout: Float32Array, ids: Int32Array, o: EmbeddingOptions): Float32Array {
  return ops.embeddingBackward(dout, ids, o);
}

/** Qwen3 RMSNorm of each row of x [rows, dim]: w * (x / sqrt(mean(x^2) + eps)), w is [dim]. */
export function rmsnormForward(x: Float32Array, w: Float32Array, o: RmsnormForwardOptions): RmsnormForwardResult {
  return ops.rmsnormForward(x, w, o);
}

/** Gradients of rmsnormForward given dout, using the rstd it returned. */
export function rmsnormBackward(
  dout: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rstd: Float32Array,
  o: RmsnormOptions,
): RmsnormBackwardResult {
  return ops.rmsnormBackward(dout, x, w, rstd, o);
}

/** y[T, out] = x[T, in] W^T + b, with W [out, in] as Hugging Face stores it; b may be null. */
export function linearForward(
  x: Float32Array,
  W: Float32Array,
  b: Float32Array | null,
  o: LinearOptions,
): Float32Array {
  return ops.linearForward(x, W, b, o);
}

/** Gradients of linearForward: dx = dy W, dW = dy^T x, db = column sums of dy. */
export function linearBackward(
  dy: Float32Array,
  x: Float32Array,
  W: Float32Array,
  o: LinearBackwardOptions,
): LinearBackwardResult {
  return ops.linearBackward(dy, x, W, o);
}

/**
 * Rotary embedding of x [T, heads, headDim] ("rotate half", as Hugging Face Qwen models), with
 * positions pos [T], or [3, T] component-major when options.sections is given.
 */
export function ropeForward(x: Float32Array, pos: Int32Array, o: RopeForwardOptions): Float32Array {
  return ops.ropeForward(x, pos, o);
}

/** Gradient of ropeForward with respect to x: dout rotated back by the same angles. */
export function ropeBackward(dout: Float32Array, pos: Int32Array, o: RopeOptions): Float32Array {
  return ops.ropeBackward(dout, pos, o);
}

/**
 * Which position component (0 time, 1 height, 2 width) each of the headDim/2 frequencies uses in
 * multi-section rope.
 */
export function ropeSectionMap(headDim: number, sections: number[], interleaved: boolean): Uint8Array {
  return ops.ropeSectionMap(headDim, sections, interleaved);
}

/** silu(gate) * up, elementwise. */
export function swigluForward(gate: Float32Array, up: Float32Array): Float32Array {
  return ops.swigluForward(gate, up);
}

/** Gradients of swigluForward with respect to gate and up. */
export function swigluBackward(dout: Float32Array, gate: Float32Array, up: Float32Array): SwigluBackwardResult {
  return ops.swigluBackward(dout, gate, up);
}

/** a + b, elementwise (the residual connection). */
export function addForward(a: Float32Array, b: Float32Array): Float32Array {
  return ops.addForward(a, b);
}

/** dst += src in place (how backward passes a gradient through a residual); returns dst. */
export function addInplace(dst: Float32Array, src: Float32Array): Float32Array {
  return ops.addInplace(dst, src);
}
