// Typed face of AdamW over one flat float32 buffer and the gradient utilities around it
// (native/ops/adamw.h; its op-table entry in adamw.cc). The model's optimizer (optimizer.ts) runs the same
// native code over all its parameters; these functions serve tests and tools that own their buffers.
import { runOp } from './ops.js';

export interface AdamWStepOptions {
  lr: number;
  /** First-moment decay, in [0, 1). Defaults of this and the next three: ADAMW_DEFAULTS (adamw-defaults.ts). */
  beta1?: number;
  /** Second-moment decay, in [0, 1). */
  beta2?: number;
  /** Added to the bias-corrected sqrt(v); > 0. */
  eps?: number;
  /** Decoupled weight decay: p *= 1 − lr·weightDecay before the update. */
  weightDecay?: number;
  /** 1-based step number (bias correction uses beta^step). */
  step: number;
  /** Whether weight decay applies to this buffer; default true. */
  decay?: boolean;
}

/**
 * One AdamW step, in place on p, m and v (all the same length), in torch.optim.AdamW's order:
 * p *= 1 − lr·wd; m = β1·m + (1−β1)·g; v = β2·v + (1−β2)·g²;
 * p −= lr/(1−β1^t) · m / (sqrt(v)/sqrt(1−β2^t) + eps).
 * Throws on NaN/Inf in any input (check the gradient with sumSquares first).
 */
export function adamwStep(
  p: Float32Array,
  g: Float32Array,
  m: Float32Array,
  v: Float32Array,
  o: AdamWStepOptions,
): void {
  runOp('adamw.forward', 'cpu', { p, g, m, v }, o);
}

/**
 * Σ g[i]² accumulated in double over fixed chunks: the same value whatever the thread count.
 * +Infinity or NaN when g holds a non-finite value, so sqrt of it doubles as the global-norm check.
 */
export function sumSquares(g: Float32Array): number {
  return runOp('sum_squares.forward', 'cpu', { g }, {}).value;
}

/** g *= s in place (e.g. clipping by max_norm / norm). */
export function scaleInPlace(g: Float32Array, s: number): void {
  runOp('scale.forward', 'cpu', { g }, { s });
}
