// Shared numerics for tests: a seeded RNG, random tensors, float64 reference helpers and a
// finite-difference gradient checker.
import type { Test } from 'tap';
import { prng } from '../../src/util/prng.js';

/** Seeded PRNG (mulberry32), so every test input is reproducible. */
export const rng = prng;

/** Bit-for-bit equality of two float arrays (views included), as bytes: tap's deep equality walks a
 * Float32Array element by element, which takes seconds at millions of values. */
export function sameBits(a: Float32Array, b: Float32Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
}

/** Uniform values in [lo, hi). */
export function randn(n: number, r: () => number, lo = -1, hi = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * r();
  return out;
}

export function randInt(n: number, r: () => number, lo: number, hi: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + Math.floor(r() * (hi - lo));
  return out;
}

/** Dot product in float64: the scalar "loss" sum(out * probe) used to turn any op into a scalar. */
export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/** Largest |a-b| / (atol + rtol*|b|) over all elements; <= 1 means "close". */
export function closeness(a: ArrayLike<number>, b: ArrayLike<number>, atol: number, rtol: number): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let worst = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / (atol + rtol * Math.abs(b[i]));
    if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : Math.max(worst, d);
  }
  return worst;
}

/**
 * Closeness of a float32 gradient to transformers' float64 one, in units of the tolerance every
 * reference test uses: 1e-4 of the reference's largest magnitude (plus 1e-7) absolute, 1e-3
 * relative; a gradient is as transformers' when this is <= 1.
 */
export function gradientCloseness(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  return closeness(actual, expected, 1e-4 * scale + 1e-7, 1e-3);
}

export function assertClose(
  t: Test,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
  msg: string,
): void {
  const c = closeness(actual, expected, atol, rtol);
  t.ok(c <= 1, `${msg} (worst error ${c.toFixed(3)} x tolerance atol=${atol} rtol=${rtol})`);
}

export interface GradCheckOptions {
  /** The tensor being perturbed in place. */
  param: Float32Array;
  /** The analytic gradient of loss() with respect to param. */
  grad: ArrayLike<number>;
  /** Recomputes the scalar loss from the current contents of param (float64 accumulation). */
  loss: () => number;
  /** Finite-difference step. */
  eps: number;
  /** Accept |fd - analytic| <= atol + rtol * |analytic|. */
  atol: number;
  rtol: number;
  /** Check at most this many entries, chosen with the seeded rng (all when omitted). */
  samples?: number;
  seed?: number;
}

/**
 * Central finite differences, (L(p+eps) - L(p-eps)) / 2eps, against the analytic gradient.
 * Returns the worst closeness ratio (<= 1 passes).
 */
export function gradcheck(o: GradCheckOptions): { worst: number; checked: number; index: number } {
  const n = o.param.length;
  const idx: number[] = [];
  if (o.samples === undefined || o.samples >= n) for (let i = 0; i < n; i++) idx.push(i);
  else {
    const r = rng(o.seed ?? 1);
    for (let k = 0; k < o.samples; k++) idx.push(Math.floor(r() * n));
  }
  let worst = 0;
  let worstIndex = -1;
  for (const i of idx) {
    const orig = o.param[i];
    o.param[i] = orig + o.eps;
    const up = o.loss();
    o.param[i] = orig - o.eps;
    const down = o.loss();
    o.param[i] = orig;
    // The step actually taken in float32 may differ from eps; divide by the real one.
    const h = Math.fround(orig + o.eps) - Math.fround(orig - o.eps);
    const fd = (up - down) / h;
    const c = Math.abs(fd - o.grad[i]) / (o.atol + o.rtol * Math.abs(o.grad[i]));
    if (!(c <= worst)) {
      worst = Number.isNaN(c) ? Infinity : c;
      worstIndex = i;
    }
  }
  return { worst, checked: idx.length, index: worstIndex };
}
