// AdamW over a whole model: global-norm clipping, non-finite check, decoupled weight decay.
import { ADAMW_DEFAULTS } from './adamw-defaults.js';
import type { Model, StepResult } from './model.js';

export interface AdamWOptions {
  lr: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Clip the global gradient norm to this before the update (0: off). */
  maxGradNorm?: number;
  /**
   * Parameters exempt from weight decay. Default: none, as torch.optim.AdamW over
   * model.parameters() does (and as the MediX-R1 recipes train). A frozen vision tower
   * (Model.setVisionFrozen) is always exempt.
   */
  noDecay?: (name: string) => boolean;
}

export class AdamW {
  private readonly decay: boolean[];

  constructor(
    private readonly model: Model,
    private readonly options: AdamWOptions,
  ) {
    const exempt = options.noDecay ?? (() => false);
    // A frozen vision tower has zero gradients; without decay AdamW's update of it is exactly zero.
    const frozen = (name: string) => model.visionFrozen && name.startsWith('model.visual.');
    this.decay = model.parameters().map((p) => !exempt(p.name) && !frozen(p.name));
  }

  /**
   * One update from the accumulated gradients. If any gradient is NaN/Inf the step is skipped
   * (parameters and moments untouched) and reported as such. `lr` overrides the configured rate
   * (learning-rate schedules).
   */
  step(lr = this.options.lr): Promise<StepResult> {
    const [beta1, beta2] = this.options.betas ?? [ADAMW_DEFAULTS.beta1, ADAMW_DEFAULTS.beta2];
    return this.model.optimizerStep({
      lr,
      beta1,
      beta2,
      eps: this.options.eps ?? ADAMW_DEFAULTS.eps,
      weightDecay: this.options.weightDecay ?? ADAMW_DEFAULTS.weightDecay,
      maxGradNorm: this.options.maxGradNorm ?? 0,
      decay: this.decay,
    });
  }
}
