// Training checkpoints: everything needed to continue a run exactly. A checkpoint directory holds
// the model as a Hugging Face directory in f32 (model/, loadable by loadModel and by `medix merge`),
// the AdamW moments, and trainer_state.json: the step, scheduler, RNG and data positions, the
// config, and a SHA-256 of every file. It is written under a temporary name and renamed to
// step_NNNNNN when complete; resume takes the newest one whose checksums verify, so a process
// killed at any moment (even mid-save) leaves the run resumable.
//
// One process writes model/model.safetensors (or its own shards) and optimizer.safetensors (both
// moments as flat arrays). A data-parallel run writes one file of weights per rank, model/
// model-0000R-of-0000W.safetensors with the tensors rank R-1 owns (model/ is then a sharded
// Hugging Face directory with its index), and optimizer/rank-0000R-of-0000W.safetensors with their
// moments by tensor name ("<name>.exp_avg", "<name>.exp_avg_sq"); trainer_state.json lists which
// rank wrote which tensors and files (checkpoint-sharded.ts). Either layout loads into any number
// of processes: each takes the moments of the tensors it owns, wherever they were written. A fully
// sharded run writes parts of tensors instead (checkpoint-full-shard.ts), assembled when loaded.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Device } from '../config/schema.js';
import type { Model } from '../engine/model.js';
import { loadModel } from '../model/load.js';
import { saveModel } from '../model/save.js';
import { SafetensorsFile } from '../model/safetensors.js';
import { bytesOf, writeSafetensors } from '../model/safetensors-writer.js';
import { atomicWriteFileSync, fsyncDir } from '../util/atomic-write.js';
import { checksumFault, checksumFiles, type FileChecksums } from './file-checksums.js';
import { assembleSlices, holdsSlices, type WholeState } from './checkpoint-full-shard.js';
import { setWholeMoments } from './checkpoint-moments.js';
import { fullShard } from '../engine/full-shard.js';

/** What the trainer needs besides the weights and moments; JSON-serialisable. */
export interface TrainerState {
  step: number;
  [key: string]: unknown;
}

/** Who wrote what in a checkpoint of a data-parallel run. */
export interface ShardManifest {
  worldSize: number;
  ranks: {
    rank: number;
    parameters: string[];
    files: string[];
    /** A fully sharded run (checkpoint-full-shard.ts): the parts of tensors this rank's file holds. */
    slices?: { name: string; from: number; count: number }[];
  }[];
}

export interface StateFile {
  format: 'medix-checkpoint-1';
  trainer: TrainerState;
  optimizerStep: number;
  /** SHA-256 of each file, by path relative to the checkpoint directory. */
  files: FileChecksums;
  /** Present when the checkpoint was written by several processes. */
  shards?: ShardManifest;
}

/** The moments of one process, in the single-process layout. */
const FLAT_OPTIMIZER_FILE = 'optimizer.safetensors';
export const momentNames = (param: string) => ({ m: `${param}.exp_avg`, v: `${param}.exp_avg_sq` });

export class CheckpointCorruptError extends Error {
  override name = 'CheckpointCorruptError';
}

const STEP_DIR = /^step_(\d{6,})$/;
/** The state file records the checksums of every other file, so it is not among them. */
export const STATE_FILE = 'trainer_state.json';

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

export function saveCheckpoint(
  runDir: string,
  model: Model,
  state: TrainerState,
  options: CheckpointOptions = {},
): string {
  const tmp = startCheckpoint(runDir, state.step);
  saveModel(model, join(tmp, 'model'), {
    dtype: 'f32',
    config: options.modelConfig,
    generationConfig: options.generationConfig,
    tokenizerDir: options.tokenizerDir,
  });
  const opt = model.getOptimizerState();
  writeSafetensors(join(tmp, FLAT_OPTIMIZER_FILE), [
    { name: 'exp_avg', dtype: 'F32', shape: [opt.m.length], bytes: () => bytesOf(opt.m) },
    { name: 'exp_avg_sq', dtype: 'F32', shape: [opt.v.length], bytes: () => bytesOf(opt.v) },
  ]);
  const files = checksumFiles(tmp, STATE_FILE);
  return commitCheckpoint(
    runDir,
    tmp,
    { format: 'medix-checkpoint-1', trainer: state, optimizerStep: opt.step, files },
    options.keep ?? 0,
  );
}

/** A fresh temporary directory for the checkpoint of `step`, renamed into place by commitCheckpoint. */
export function startCheckpoint(runDir: string, step: number): string {
  const root = join(runDir, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const tmp = join(root, `.${stepDirName(step)}.partial-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  return tmp;
}

/** Writes the state file into the complete `tmp`, renames it to its step's name, keeps the newest `keep` (0: all). */
export function commitCheckpoint(runDir: string, tmp: string, state: StateFile, keep: number): string {
  const root = join(runDir, 'checkpoints');
  const final = join(root, stepDirName(state.trainer.step));
  atomicWriteFileSync(join(tmp, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`);
  fsyncDir(tmp);
  // A directory of this step already there never verified: a resume starts from the newest checkpoint
  // that does (and load_checkpoint_path refuses a run directory with later ones), so nothing valid is lost.
  if (existsSync(final)) rmSync(final, { recursive: true });
  renameSync(tmp, final);
  fsyncDir(root);
  if (keep > 0)
    for (const old of listCheckpoints(runDir).slice(keep)) rmSync(old.dir, { recursive: true, force: true });
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

/** Reads a checkpoint's state file; throws CheckpointCorruptError when it is unreadable or not one. */
export function readStateFile(dir: string): StateFile {
  const statePath = join(dir, STATE_FILE);
  let state: StateFile;
  try {
    state = JSON.parse(readFileSync(statePath, 'utf8'));
  } catch (e) {
    throw new CheckpointCorruptError(`${statePath}: unreadable (${(e as Error).message})`);
  }
  if (
    state.format !== 'medix-checkpoint-1' ||
    typeof state.files !== 'object' ||
    typeof state.trainer?.step !== 'number'
  )
    throw new CheckpointCorruptError(`${statePath}: not a medix checkpoint state file`);
  return state;
}

/** Reads and verifies a checkpoint's state file and checksums; throws CheckpointCorruptError naming the fault (and the rank that wrote a faulty shard). */
export function verifyCheckpoint(dir: string): StateFile {
  const state = readStateFile(dir);
  const writer = new Map(state.shards?.ranks.flatMap((r) => r.files.map((f) => [f, r.rank] as const)) ?? []);
  const fault = checksumFault(dir, state.files, STATE_FILE, (f) =>
    writer.has(f) ? `${f} (written by rank ${writer.get(f)} of ${state.shards!.worldSize})` : f,
  );
  if (fault) throw new CheckpointCorruptError(fault);
  return state;
}

/** The newest checkpoint that verifies; damaged newer ones are reported through `warn` and skipped. */
export function latestValidCheckpoint(
  runDir: string,
  warn: (msg: string) => void = console.warn,
): { dir: string; trainer: TrainerState } | null {
  for (const c of listCheckpoints(runDir)) {
    try {
      return { dir: c.dir, trainer: verifyCheckpoint(c.dir).trainer };
    } catch (e) {
      warn(`medix: skipping checkpoint ${c.dir}: ${(e as Error).message}`);
    }
  }
  return null;
}

export interface LoadCheckpointOptions {
  /** Make the model data parallel over this process's world (Model.setDataParallel) before restoring its share of the moments. */
  dataParallel?: boolean;
  /** Shard the model fully over this process's world (fullShard) before restoring its share of the moments. */
  fullShard?: boolean;
  /** Check every file's checksum first (default true; a rank whose root has just verified the checkpoint skips it). */
  verify?: boolean;
  /** Where the model runs (default cpu). */
  device?: Device;
}

/** Loads the model weights and optimizer state of a checkpoint of either layout. */
export async function loadCheckpoint(
  dir: string,
  o: LoadCheckpointOptions = {},
): Promise<{ model: Model; trainer: TrainerState }> {
  const state = o.verify === false ? readStateFile(dir) : verifyCheckpoint(dir);
  // A fully sharded run's parts, or full sharding asked for: via whole moments (set_full_shard needs
  // whole weights and no optimizer state yet).
  if (holdsSlices(state) || o.fullShard) {
    const whole = holdsSlices(state) ? assembleSlices(dir, state, o.device) : await loadWhole(dir, state, o.device);
    if (o.fullShard) fullShard(whole.model);
    else if (o.dataParallel) whole.model.setDataParallel();
    setWholeMoments(whole.model, state.optimizerStep, whole.m, whole.v);
    return { model: whole.model, trainer: state.trainer };
  }
  const model = await loadModel(join(dir, 'model'), { device: o.device });
  if (o.dataParallel) model.setDataParallel();
  model.setOptimizerState({ step: state.optimizerStep, ...readMoments(dir, state, model) });
  return { model, trainer: state.trainer };
}

/** A checkpoint of whole tensors, with every parameter's moments (the model is not sharded yet). */
async function loadWhole(dir: string, state: StateFile, device?: Device): Promise<WholeState> {
  const model = await loadModel(join(dir, 'model'), { device });
  return { model, ...readMoments(dir, state, model) };
}

/** The moments of the tensors `model` owns (Model.optimizerShard), from whichever files hold them. */
function readMoments(dir: string, state: StateFile, model: Model): { m: Float32Array; v: Float32Array } {
  const shard = model.optimizerShard();
  const m = new Float32Array(shard.numel);
  const v = new Float32Array(shard.numel);
  const files = new Map<string, SafetensorsFile>();
  const open = (f: string) => {
    if (!files.has(f)) files.set(f, SafetensorsFile.open(join(dir, f)));
    return files.get(f)!;
  };
  const read = (f: string, tensor: string, length: number) => {
    const x = open(f).readFloat32(tensor);
    if (x.length !== length)
      throw new CheckpointCorruptError(`${join(dir, f)}: ${tensor} has ${x.length} values, the model needs ${length}`);
    return x;
  };
  try {
    if (!state.shards) {
      // Flat moments of every parameter: this process's tensors are one consecutive slice of them.
      if (shard.numel > 0) {
        const all = model.parameters();
        const first = all.slice(0, all.indexOf(shard.parameters[0])).reduce((n, p) => n + p.numel, 0);
        const total = model.numParameters;
        m.set(read(FLAT_OPTIMIZER_FILE, 'exp_avg', total).subarray(first, first + shard.numel));
        v.set(read(FLAT_OPTIMIZER_FILE, 'exp_avg_sq', total).subarray(first, first + shard.numel));
      }
    } else {
      const optimizerFile = new Map(
        state.shards.ranks.flatMap((r) =>
          r.parameters.map((p) => [p, r.files.find((f) => f.startsWith('optimizer/'))!] as const),
        ),
      );
      let at = 0;
      for (const p of shard.parameters) {
        const f = optimizerFile.get(p.name);
        if (!f)
          throw new CheckpointCorruptError(
            `${join(dir, 'trainer_state.json')}: no rank's shard holds the optimizer state of ${p.name}`,
          );
        const names = momentNames(p.name);
        m.set(read(f, names.m, p.numel), at);
        v.set(read(f, names.v, p.numel), at);
        at += p.numel;
      }
    }
  } finally {
    for (const f of files.values()) f.close();
  }
  return { m, v };
}
