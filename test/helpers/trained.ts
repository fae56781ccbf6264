// Did the optimizer steps between two states of a model take in gradients? A resume or kill test
// that compares bits proves nothing when the steps it resumes had no gradient: AdamW then only
// decays its moments (m <- beta1 m, v <- beta2 v) and the weights drift on old momentum, identically
// in any run. This counts what a gradient adds beyond that decay.
import type { Test } from 'tap';
import type { Model } from '../../src/engine/model.js';
import { sameBits } from './numeric.js';

export interface Movement {
  optimizerSteps: number;
  /** Parameter tensors whose bits changed. */
  weights: number;
  /** Moment elements that differ from the old ones decayed over the steps by more than rounding. */
  firstMoment: number;
  secondMoment: number;
}

/** Float32 rounding of k decays is ~k·6e-8 relative; a gradient's share is far above this. */
const DECAY_TOLERANCE = 1e-4;

function beyondDecay(before: Float32Array, after: Float32Array, decay: number): number {
  let n = 0;
  for (let i = 0; i < after.length; i++) {
    const decayed = before[i] * decay;
    if (Math.abs(after[i] - decayed) > DECAY_TOLERANCE * Math.max(Math.abs(after[i]), Math.abs(decayed))) n++;
  }
  return n;
}

export function movementBetween(before: Model, after: Model, betas: [number, number] = [0.9, 0.999]): Movement {
  const [x, y] = [before.getOptimizerState(), after.getOptimizerState()];
  const k = y.step - x.step;
  return {
    optimizerSteps: k,
    weights: before.parameters().filter((p) => !sameBits(before.getParameter(p.name), after.getParameter(p.name)))
      .length,
    firstMoment: beyondDecay(x.m, y.m, betas[0] ** k),
    secondMoment: beyondDecay(x.v, y.v, betas[1] ** k),
  };
}

/** Asserts that the steps from `before` to `after` trained: weights and both AdamW moments moved by gradients. */
export function assertTrained(t: Test, before: Model, after: Model, what: string): void {
  const m = movementBetween(before, after);
  t.ok(
    m.optimizerSteps > 0 && m.weights > 0 && m.firstMoment > 0 && m.secondMoment > 0,
    `${what}: trained with a gradient (${JSON.stringify(m)})`,
  );
}
