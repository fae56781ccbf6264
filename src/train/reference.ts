// The frozen reference policy that KL is measured against (as a loss or in the reward): the policy
// as RL starts, kept in the run directory (reference/) so that a resumed run measures against the
// same weights. Its log-probs run worker.ref.micro_batch_size_per_device_for_experience samples per
// forward pass (default: the actor's), each rank of a distributed run computing its share (fully
// sharded like the policy when the policy is). Like a
// checkpoint, the directory records a SHA-256 of every file (checksums.json) and is renamed into
// place only once complete; it is verified whenever it is read, because a damaged reference would
// silently change every KL value of the rest of the run.
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Model } from '../engine/model.js';
import type { World } from '../engine/world.js';
import { setComputeDtype } from '../engine/bf16.js';
import { fullShard, withWholeWeights } from '../engine/full-shard.js';
import { loadModel } from '../model/load.js';
import { saveModel } from '../model/save.js';
import { atomicWriteFileSync, fsyncDir } from '../util/atomic-write.js';
import type { TrainingConfig } from '../config/index.js';
import type { Device } from '../config/schema.js';
import type { Experience } from './experience.js';
import { checksumFault, checksumFiles, type FileChecksums } from './file-checksums.js';
import { computeLogprobs } from './update.js';

const CHECKSUMS = 'checksums.json';

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
  /** The policy is fully sharded over `world` (fullShard): the reference is too. */
  fullShard?: boolean;
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
    const write = async () => {
      if ((o.world?.isRoot ?? true) && !existsSync(dir)) {
        const inherited = o.inheritFrom ? join(o.inheritFrom, 'reference') : null;
        if (inherited && existsSync(inherited)) {
          writeReference(await loadReference(inherited), dir, o.modelConfig);
          o.log?.(`medix train: reference model taken from ${inherited}`);
        } else {
          if (o.inheritFrom)
            o.log?.(
              `medix train: ${o.inheritFrom} has no reference model; the reference is the policy of the checkpoint this run continues from`,
            );
          writeReference(policy, dir, o.modelConfig);
        }
      }
    };
    // A fully sharded policy is gathered whole on every rank (a collective) while the root writes it.
    if (o.fullShard) await withWholeWeights(policy, write);
    else await write();
    await o.world?.barrier(); // the other ranks load what the root has written
    const w = o.worker;
    const model = await loadReference(dir, w.actor.device);
    if (o.fullShard) fullShard(model); // sharded like the policy: its forwards gather unit by unit
    // It computes in the policy's dtype: a bf16 policy against an f32 reference would show a KL of the
    // rounding alone at the first step, before the policy has moved.
    setComputeDtype(model, w.actor.model.dtype);
    return new ReferencePolicy(
      model,
      w.ref.micro_batch_size_per_device_for_experience ?? w.actor.micro_batch_size_per_device_for_experience,
      o.world,
    );
  }

  /** Log-probs of every experience's response tokens under the reference. */
  logprobs(exps: readonly Experience[], temperature: number): Promise<Float32Array[]> {
    return computeLogprobs(this.model, exps, this.microBatch, temperature, this.world);
  }
}

/** Writes the model and its checksums under a temporary name, then renames the whole directory into place. */
function writeReference(model: Model, dir: string, modelConfig: Record<string, unknown> | undefined): void {
  const tmp = join(dirname(dir), `.${basename(dir)}.unchecked-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  saveModel(model, tmp, { dtype: 'f32', config: modelConfig });
  atomicWriteFileSync(join(tmp, CHECKSUMS), `${JSON.stringify({ files: checksumFiles(tmp, CHECKSUMS) }, null, 2)}\n`);
  renameSync(tmp, dir);
  fsyncDir(dirname(dir));
}

/** Loads a reference directory after checking every file against its checksums; refuses one that does not verify, naming the file. */
async function loadReference(dir: string, device: Device = 'cpu'): Promise<Model> {
  const refuse = (fault: string) =>
    new Error(
      `medix train: the reference model ${dir} does not verify: ${fault}. KL is measured against this frozen copy of the policy at RL start, so the run cannot go on with another; restore the directory from a copy, or start a new run`,
    );
  const file = join(dir, CHECKSUMS);
  let files: FileChecksums;
  try {
    files = (JSON.parse(readFileSync(file, 'utf8')) as { files: FileChecksums }).files;
  } catch (e) {
    throw refuse(`${file}: unreadable (${(e as Error).message})`);
  }
  if (typeof files !== 'object' || files === null) throw refuse(`${file}: no "files" record`);
  const fault = checksumFault(dir, files, CHECKSUMS);
  if (fault) throw refuse(fault);
  return loadModel(dir, { device });
}
