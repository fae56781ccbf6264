// bf16 on the engine (native/core/bf16.h): conversions, the linear op with bf16 weights, and the
// dtype a model computes in. bf16 arrays are Uint16Arrays of the raw bits (the upper half of an f32).
import type { ComputeDtype } from './compute-dtype.js';
import type { LinearBackwardOptions, LinearBackwardResult, LinearOptions } from './layers.js';
import { type Model, nativeModelHandle } from './model.js';
import { native } from './native.js';

/** A conversion path: 'scalar', 'avx2', 'avx512bf16' (VCVTNE2PS2BF16); all give the same bits. */
export type Bf16Path = 'scalar' | 'avx2' | 'avx512bf16';

interface Bf16Addon {
  bf16Paths(): Bf16Path[];
  f32ToBf16(x: Float32Array, path?: Bf16Path): Uint16Array;
  bf16ToF32(h: Uint16Array, path?: Bf16Path): Float32Array;
  linearForwardBf16(x: Float32Array, W: Uint16Array, b: Float32Array | null, o: LinearOptions): Float32Array;
  linearBackwardBf16(dy: Float32Array, x: Float32Array, W: Uint16Array, o: LinearBackwardOptions): LinearBackwardResult;
  setComputeDtype(model: unknown, dtype: string): void;
  computeDtype(model: unknown): ComputeDtype;
}

const ops = native<Bf16Addon>();

/** The conversion paths this CPU and build can run, widest (the one used by default) last. */
export function bf16Paths(): Bf16Path[] {
  return ops.bf16Paths();
}

/**
 * f32 -> bf16 bits as VCVTNEPS2BF16 defines it: round to nearest even; NaN kept (quieted); zero and
 * denormal inputs become a zero of the same sign.
 */
export function f32ToBf16(x: Float32Array, path?: Bf16Path): Uint16Array {
  return ops.f32ToBf16(x, path);
}

/** bf16 bits -> f32, exactly. */
export function bf16ToF32(h: Uint16Array, path?: Bf16Path): Float32Array {
  return ops.bf16ToF32(h, path);
}

/** linearForward with bf16 weights W [out, in]: f32 activations, products and sums. */
export function linearForwardBf16(
  x: Float32Array,
  W: Uint16Array,
  b: Float32Array | null,
  o: LinearOptions,
): Float32Array {
  return ops.linearForwardBf16(x, W, b, o);
}

/** Gradients of linearForwardBf16: dx = dy W (the bf16 W, widened), dW = dy^T x and db in f32. */
export function linearBackwardBf16(
  dy: Float32Array,
  x: Float32Array,
  W: Uint16Array,
  o: LinearBackwardOptions,
): LinearBackwardResult {
  return ops.linearBackwardBf16(dy, x, W, o);
}

/**
 * The dtype of the model's matrix products. bf16 keeps a bf16 copy of the weights, remade after
 * every change to them (setParameter, each optimizer step); see native/model/qwen3.h.
 */
export function setComputeDtype(model: Model, dtype: ComputeDtype): void {
  ops.setComputeDtype(nativeModelHandle(model), dtype);
}

export function computeDtype(model: Model): ComputeDtype {
  return ops.computeDtype(nativeModelHandle(model));
}
