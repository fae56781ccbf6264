// Learning rate as a pure function of the optimizer step, so a resumed run needs only the step:
// linear warm-up, then constant or cosine decay to min_lr_ratio·lr (veRL's cosine-with-min-ratio).

export type LrSchedulerType = 'constant' | 'cosine';

export interface LrScheduleOptions {
  /** Peak learning rate. */
  lr: number;
  /** Optimizer steps of the whole run (the cosine reaches its minimum there). */
  totalSteps: number;
  /** Warm-up steps; when absent, warmupRatio × totalSteps (rounded down). */
  warmupSteps?: number;
  warmupRatio?: number;
  type: LrSchedulerType;
  /** The cosine's floor as a fraction of lr, in [0, 1]. */
  minLrRatio?: number;
}

export function warmupStepsOf(o: LrScheduleOptions): number {
  return o.warmupSteps ?? Math.floor((o.warmupRatio ?? 0) * o.totalSteps);
}

/**
 * The learning rate of optimizer step `step` (0-based). Warm-up step s uses lr·(s+1)/warmup, so the
 * first step already moves and the last warm-up step reaches lr (a 0 lr step would be wasted work).
 * After warm-up, cosine: min + (lr − min)·½(1 + cos(π·p)), p = (step − warmup)/(total − warmup), held
 * at the floor past totalSteps.
 */
export function learningRateAt(step: number, o: LrScheduleOptions): number {
  if (!Number.isInteger(step) || step < 0)
    throw new RangeError(`learningRateAt: step must be a non-negative integer, got ${step}`);
  const warmup = warmupStepsOf(o);
  if (step < warmup) return (o.lr * (step + 1)) / warmup;
  if (o.type === 'constant') return o.lr;
  const floor = o.lr * (o.minLrRatio ?? 0);
  const progress = Math.min(1, (step - warmup) / Math.max(1, o.totalSteps - warmup));
  return floor + (o.lr - floor) * 0.5 * (1 + Math.cos(Math.PI * progress));
}
