// Training checkpoints: everything needed to continue a run exactly. A checkpoint directory holds
// the model as a Hugging Face directory in f32 (model/, loadable by loadModel and by `medix merge`),
// the AdamW moments (optimizer.safetensors), and trainer_state.json: the step, scheduler, RNG and
// data positions, the config, and a SHA-256 of every file. It is written under a temporary name
// and renamed to step_NNNNNN when complete; resume takes the newest one whose checksums verify, so
// a process killed at any moment (even mid-save) leaves the run resumable.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Model } from '../engine/model.js';
import { loadModel } from '../model/load.js';
import { saveModel } from '../model/save.js';
import { SafetensorsFile } from '../model/safetensors.js';
import { bytesOf, writeSafetensors } from '../model/safetensors-writer.js';
import { atomicWriteFileSync, fsyncDir } from '../util/atomic-write.js';
import { checksumFault, checksumFiles, type FileChecksums } from './file-checksums.js';

/** What the trainer needs besides the weights and moments; JSON-serialisable. */
export interface TrainerState {
  step: number;
  [key: string]: unknown;
}

interface StateFile {
  format: 'medix-checkpoint-1';
  trainer: TrainerState;
  optimizerStep: number;
  /** SHA-256 of each file, by path relative to the checkpoint directory. */
  files: FileChecksums;
}

export class CheckpointCorruptError extends Error {
  override name = 'CheckpointCorruptError';
}

const STEP_DIR = /^step_(\d{6,})$/;
/** The state file records the checksums of every other file, so it is not among them. */
const STATE_FILE = 'trainer_state.json';

export function stepDirName(step: number): string {
  return `step_${String(step).padStart(6, '0')}`;
}

/** Writes checkpoints/step_NNNNNN for `state.step`, then keeps only the newest `keep` checkpoints. */
export interface CheckpointOptions {
  /** Keep only the newest K checkpoints (0: all). */
  keep?: number;
  /** The source model's config.json, kept in model/ (default: written from the engine config). */
  modelConfig?: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  /** Tokenizer files to keep with the model, so a checkpoint (and its merge) is self-contained. */
  tokenizerDir?: string;
}

export function saveCheckpoint(runDir: string, model: Model, state: TrainerState, options: CheckpointOptions = {}): string {
  const root = join(runDir, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const final = join(root, stepDirName(state.step));
  const tmp = join(root, `.${stepDirName(state.step)}.partial-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  saveModel(model, join(tmp, 'model'), { dtype: 'f32', config: options.modelConfig, generationConfig: options.generationConfig, tokenizerDir: options.tokenizerDir });
  const opt = model.getOptimizerState();
  writeSafetensors(join(tmp, 'optimizer.safetensors'), [
    { name: 'exp_avg', dtype: 'F32', shape: [opt.m.length], bytes: () => bytesOf(opt.m) },
    { name: 'exp_avg_sq', dtype: 'F32', shape: [opt.v.length], bytes: () => bytesOf(opt.v) },
  ]);
  const files = checksumFiles(tmp, STATE_FILE);
  const stateFile: StateFile = { format: 'medix-checkpoint-1', trainer: state, optimizerStep: opt.step, files };
  atomicWriteFileSync(join(tmp, STATE_FILE), JSON.stringify(stateFile, null, 2) + '\n');
  fsyncDir(tmp);
  if (existsSync(final)) rmSync(final, { recursive: true }); // a re-save of the same step after a resume
  renameSync(tmp, final);
  fsyncDir(root);
  const keep = options.keep ?? 0;
  if (keep > 0) for (const old of listCheckpoints(runDir).slice(keep)) rmSync(old.dir, { recursive: true, force: true });
  return final;
}

/** Checkpoint directories of a run, newest first (unverified). */
export function listCheckpoints(runDir: string): { step: number; dir: string }[] {
  const root = join(runDir, 'checkpoints');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((name) => ({ name, m: STEP_DIR.exec(name) }))
    .filter((x) => x.m)
    .map((x) => ({ step: Number(x.m![1]), dir: join(root, x.name) }))
    .sort((a, b) => b.step - a.step);
}

/** Reads and verifies a checkpoint's state file and checksums; throws CheckpointCorruptError naming the fault. */
export function verifyCheckpoint(dir: string): { trainer: TrainerState; optimizerStep: number } {
  const statePath = join(dir, STATE_FILE);
  let state: StateFile;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8'));
  } catch (e) {
    throw new CheckpointCorruptError(`${statePath}: unreadable (${(e as Error).message})`);
  }
  if (state.format !== 'medix-checkpoint-1' || typeof state.files !== 'object' || typeof state.trainer?.step !== 'number')
    throw new CheckpointCorruptError(`${statePath}: not a medix checkpoint state file`);
  const fault = checksumFault(dir, state.files, STATE_FILE);
  if (fault) throw new CheckpointCorruptError(fault);
  return { trainer: state.trainer, optimizerStep: state.optimizerStep };
}

/** The newest checkpoint that verifies; damaged newer ones are reported through `warn` and skipped. */
export function latestValidCheckpoint(runDir: string, warn: (msg: string) => void = console.warn): { dir: string; trainer: TrainerState } | null {
  for (const c of listCheckpoints(runDir)) {
    try {
      return { dir: c.dir, trainer: verifyCheckpoint(c.dir).trainer };
    } catch (e) {
      warn(`medix: skipping checkpoint ${c.dir}: ${(e as Error).message}`);
    }
  }
  return null;
}

/** Loads the model weights and optimizer state of a verified checkpoint. */
export async function loadCheckpoint(dir: string): Promise<{ model: Model; trainer: TrainerState }> {
  const { trainer, optimizerStep } = verifyCheckpoint(dir);
  const model = await loadModel(join(dir, 'model'));
  const st = SafetensorsFile.open(join(dir, 'optimizer.safetensors'));
  try {
    model.setOptimizerState({ step: optimizerStep, m: st.readFloat32('exp_avg'), v: st.readFloat32('exp_avg_sq') });
  } finally {
    st.close();
  }
  return { model, trainer };
}
