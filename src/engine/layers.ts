// Typed face of the layer ops of the Qwen3 decoder, one op at a time (native/ops/*.h, and the op-table
// entries at the end of native/ops/<family>.cc): embedding, RMSNorm, linear, rotary embedding, SwiGLU,
// residual add.
// All run synchronously on the CPU in float32 and are deterministic (same inputs, same bits).
// Arguments are checked natively; bad input throws an Error naming the function and the argument.
// Backward functions return fresh gradients (zeroed, then accumulated).
import { native } from './native.js';
import { runOp } from './ops.js';

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
  ropeSectionMap(headDim: number, sections: number[], interleaved: boolean): Uint8Array;
}

const addon = native<LayerOpsAddon>();

/** out[i, :] = table[ids[i], :]; table is [vocab, dim], out is [ids.length, dim]. */
export function embeddingForward(ids: Int32Array, table: Float32Array, o: EmbeddingOptions): Float32Array {
  return runOp<{ out: Float32Array }>('embedding.forward', 'cpu', { ids, table }, o).out;
}

/** Gradient of the table, [vocab, dim]: row ids[i] receives dout[i, :] (repeated ids add up). */
export function embeddingBackward(dout: Float32Array, ids: Int32Array, o: EmbeddingOptions): Float32Array {
  return runOp<{ dtable: Float32Array }>('embedding.backward', 'cpu', { dout, ids }, o).dtable;
}

/** Qwen3 RMSNorm of each row of x [rows, dim]: w * (x / sqrt(mean(x^2) + eps)), w is [dim]. */
export function rmsnormForward(x: Float32Array, w: Float32Array, o: RmsnormForwardOptions): RmsnormForwardResult {
  const { out, rstd } = runOp<RmsnormForwardResult>('rmsnorm.forward', 'cpu', { x, w }, o);
  return { out, rstd };
}

/** Gradients of rmsnormForward given dout, using the rstd it returned. */
export function rmsnormBackward(
  dout: Float32Array,
  x: Float32Array,
  w: Float32Array,
  rstd: Float32Array,
  o: RmsnormOptions,
): RmsnormBackwardResult {
  const { dx, dw } = runOp<RmsnormBackwardResult>('rmsnorm.backward', 'cpu', { dout, x, w, rstd }, o);
  return { dx, dw };
}

/** y[T, out] = x[T, in] W^T + b, with W [out, in] as Hugging Face stores it; b may be null. */
export function linearForward(
  x: Float32Array,
  W: Float32Array,
  b: Float32Array | null,
  o: LinearOptions,
): Float32Array {
  return runOp<{ y: Float32Array }>('linear.forward', 'cpu', { x, W, b }, o).y;
}

/** Gradients of linearForward: dx = dy W, dW = dy^T x, db = column sums of dy. */
export function linearBackward(
  dy: Float32Array,
  x: Float32Array,
  W: Float32Array,
  o: LinearBackwardOptions,
): LinearBackwardResult {
  const { dx, dW, db } = runOp<LinearBackwardResult>('linear.backward', 'cpu', { dy, x, W }, o);
  return db ? { dx, dW, db } : { dx, dW };
}

/**
 * Rotary embedding of x [T, heads, headDim] ("rotate half", as Hugging Face Qwen models), with
 * positions pos [T], or [3, T] component-major when options.sections is given.
 */
export function ropeForward(x: Float32Array, pos: Int32Array, o: RopeForwardOptions): Float32Array {
  const { out } = runOp<{ out: Float32Array }>('rope.forward', 'cpu', { x, pos }, o);
  if (!o.inPlace) return out;
  x.set(out);
  return x;
}

/** Gradient of ropeForward with respect to x: dout rotated back by the same angles. */
export function ropeBackward(dout: Float32Array, pos: Int32Array, o: RopeOptions): Float32Array {
  return runOp<{ dx: Float32Array }>('rope.backward', 'cpu', { dout, pos }, o).dx;
}

/**
 * Which position component (0 time, 1 height, 2 width) each of the headDim/2 frequencies uses in
 * multi-section rope.
 */
export function ropeSectionMap(headDim: number, sections: number[], interleaved: boolean): Uint8Array {
  return addon.ropeSectionMap(headDim, sections, interleaved);
}

/** silu(gate) * up, elementwise. */
export function swigluForward(gate: Float32Array, up: Float32Array): Float32Array {
  return runOp<{ out: Float32Array }>('swiglu.forward', 'cpu', { gate, up }, {}).out;
}

/** Gradients of swigluForward with respect to gate and up. */
export function swigluBackward(dout: Float32Array, gate: Float32Array, up: Float32Array): SwigluBackwardResult {
  const { dgate, dup } = runOp<SwigluBackwardResult>('swiglu.backward', 'cpu', { dout, gate, up }, {});
  return { dgate, dup };
}

/** a + b, elementwise (the residual connection). */
export function addForward(a: Float32Array, b: Float32Array): Float32Array {
  return runOp<{ out: Float32Array }>('add.forward', 'cpu', { a, b }, {}).out;
}

/** dst += src in place (how backward passes a gradient through a residual); returns dst. */
export function addInplace(dst: Float32Array, src: Float32Array): Float32Array {
  runOp('add_inplace.forward', 'cpu', { dst, src }, {});
  return dst;
}
