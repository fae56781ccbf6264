// The frozen reference policy that KL is measured against (as a loss or in the reward): the policy
// as RL starts, kept in the run directory (reference/) so that a resumed run measures against the
// same weights. Its log-probs run worker.ref.micro_batch_size_per_device_for_experience samples per
// forward pass (default: the actor's), each rank of a distributed run computing its share.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../engine/model.js';
import type { World } from '../engine/world.js';
import { loadModel } from '../model/load.js';
import { saveModel } from '../model/save.js';
import type { TrainingConfig } from '../config/index.js';
import type { Experience } from './experience.js';
import { computeLogprobs } from './update.js';

export interface ReferenceOptions {
  worker: Pick<TrainingConfig['worker'], 'actor' | 'ref'>;
  /** The source model's config.json, kept with the saved weights. */
  modelConfig?: Record<string, unknown>;
  /**
   * The run directory of the checkpoint this run continues from when it is another run's
   * (trainer.load_checkpoint_path): its reference is taken over, so KL still measures the drift
   * from where RL began rather than from the checkpoint.
   */
  inheritFrom?: string | null;
  log?: (message: string) => void;
  /** The run's processes: the root writes reference/, every rank loads it and computes its share of the log-probs. */
  world?: World;
}

export class ReferencePolicy {
  private constructor(
    readonly model: Model,
    /** Samples per forward pass. */
    readonly microBatch: number,
    private readonly world: World | undefined,
  ) {}

  /** The run's reference; written from `policy` (or the inherited run's reference) when the run has none yet. */
  static async open(runDir: string, policy: Model, o: ReferenceOptions): Promise<ReferencePolicy> {
    const dir = join(runDir, 'reference');
    if ((o.world?.isRoot ?? true) && !existsSync(dir)) {
      const inherited = o.inheritFrom ? join(o.inheritFrom, 'reference') : null;
      if (inherited && existsSync(inherited)) {
        saveModel(await loadModel(inherited), dir, { dtype: 'f32', config: o.modelConfig });
        o.log?.(`medix train: reference model taken from ${inherited}`);
      } else {
        if (o.inheritFrom) o.log?.(`medix train: ${o.inheritFrom} has no reference model; the reference is the policy of the checkpoint this run continues from`);
        saveModel(policy, dir, { dtype: 'f32', config: o.modelConfig });
      }
    }
    await o.world?.barrier(); // the other ranks load what the root has written
    const w = o.worker;
    return new ReferencePolicy(await loadModel(dir), w.ref.micro_batch_size_per_device_for_experience ?? w.actor.micro_batch_size_per_device_for_experience, o.world);
  }

  /** Log-probs of every experience's response tokens under the reference. */
  logprobs(exps: readonly Experience[], temperature: number): Promise<Float32Array[]> {
    return computeLogprobs(this.model, exps, this.microBatch, temperature, this.world);
  }
}
