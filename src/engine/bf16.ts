// bf16 on the engine (native/core/bf16.h): conversions and the dtype a model computes in. Ops with
// bf16 weights or a bf16 KV cache run through runOp (ops.ts) with dtype 'bf16'. bf16 arrays are
// Uint16Arrays of the raw bits (the upper half of an f32).
import type { ComputeDtype } from './compute-dtype.js';
import { type Model, nativeModelHandle } from './model.js';
import { native } from './native.js';

/** A conversion path: 'scalar', 'avx2', 'avx512bf16' (VCVTNE2PS2BF16); all give the same bits. */
export type Bf16Path = 'scalar' | 'avx2' | 'avx512bf16';

interface Bf16Addon {
  bf16Paths(): Bf16Path[];
  f32ToBf16(x: Float32Array, path?: Bf16Path): Uint16Array;
  bf16ToF32(h: Uint16Array, path?: Bf16Path): Float32Array;
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
