// Which checkpoint a training run starts from: trainer.load_checkpoint_path when set (exactly that
// checkpoint, verified like any other), otherwise with --resume the run directory's newest one that
// verifies. A run never continues into a directory whose checkpoints belong to another line of
// steps: their files would mix with the new ones and a later --resume could pick the wrong one; nor
// starts afresh in one whose checkpoints all fail to verify (it would overwrite them and the logs).
import { existsSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { latestValidCheckpoint, listCheckpoints, verifyCheckpoint } from './checkpoint.js';

export interface ResumePoint {
  /** The checkpoint directory. */
  dir: string;
  step: number;
  /** Whether it belongs to another run directory than the one being written (a fork). */
  fromOtherRun: boolean;
  /** The run directory that holds it (…/checkpoints/step_N → …), or null when it is not in that layout. */
  sourceRunDir: string | null;
  /** Whether the SFT warm-up was done by then (the trainer state says so). */
  sftDone: boolean;
}

export function resumePoint(
  runDir: string,
  o: { loadCheckpointPath?: string; resume?: boolean; warn?: (message: string) => void },
): ResumePoint | null {
  runDir = resolve(runDir);
  if (o.loadCheckpointPath !== undefined) return requestedCheckpoint(runDir, resolve(o.loadCheckpointPath));
  const latest = existsSync(runDir) ? latestValidCheckpoint(runDir, o.warn) : null;
  if (!latest) {
    // Checkpoints that all fail to verify are refused: a fresh start would overwrite them and the run's logs.
    const damaged = existsSync(runDir) ? listCheckpoints(runDir).length : 0;
    if (damaged > 0)
      throw new Error(
        `${runDir}: none of its ${damaged} checkpoint(s) verifies (the messages above say why); starting afresh would overwrite them and the run's logs: set trainer.save_checkpoint_path to a new directory, or name a good checkpoint with trainer.load_checkpoint_path`,
      );
    if (o.resume) o.warn?.(`medix train: --resume: ${runDir} holds no checkpoint yet; starting at step 0`);
    return null;
  }
  if (!o.resume)
    throw new Error(
      `${runDir} already holds checkpoints; pass --resume to continue that run, or set trainer.save_checkpoint_path to a new directory`,
    );
  return {
    dir: latest.dir,
    step: latest.trainer.step,
    fromOtherRun: false,
    sourceRunDir: runDir,
    sftDone: latest.trainer.sftDone === true,
  };
}

function requestedCheckpoint(runDir: string, dir: string): ResumePoint {
  let step: number;
  let sftDone: boolean;
  try {
    const { trainer } = verifyCheckpoint(dir);
    step = trainer.step;
    sftDone = trainer.sftDone === true;
  } catch (e) {
    throw new Error(`trainer.load_checkpoint_path: ${dir} does not verify: ${(e as Error).message}`);
  }
  const sourceRunDir = basename(dirname(dir)) === 'checkpoints' ? dirname(dirname(dir)) : null;
  const fromOtherRun = sourceRunDir !== runDir;
  const others = listCheckpoints(runDir).filter((c) => resolve(c.dir) !== dir);
  const continueInstead = 'to continue the run there, pass --resume with trainer.load_checkpoint_path=null';
  if (fromOtherRun && others.length > 0)
    throw new Error(
      `trainer.load_checkpoint_path: ${dir} is not one of ${runDir}'s checkpoints, but that directory (trainer.save_checkpoint_path) already holds some (${join(runDir, 'checkpoints')}); set trainer.save_checkpoint_path to a new directory, or ${continueInstead}`,
    );
  const later = others.filter((c) => c.step > step).map((c) => c.step);
  if (later.length > 0)
    throw new Error(
      `trainer.load_checkpoint_path: ${dir} is step ${step}, but ${runDir} also holds later checkpoints (steps ${later.sort((a, b) => a - b).join(', ')}); to restart from step ${step}, delete those or set trainer.save_checkpoint_path to a new directory; ${continueInstead}`,
    );
  return { dir, step, fromOtherRun, sourceRunDir, sftDone };
}
