// Which checkpoint a run starts from: trainer.load_checkpoint_path names one exactly (verified, a
// damaged one refused with the key in the message); otherwise --resume takes the newest valid one.
// A run never continues into a directory holding checkpoints of another line of steps, nor starts over
// in one whose checkpoints all fail to verify.
import t from 'tap';
import { appendFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../../src/engine/model.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { resumePoint } from '../../src/train/resume.js';
import { tinyQwen3Config } from '../helpers/tiny-config.js';

const model = Model.create(tinyQwen3Config, { seed: 5 });

function runWith(steps: number[]): string {
  const run = mkdtempSync(join(tmpdir(), 'medix-resume-'));
  for (const step of steps) saveCheckpoint(run, model, { step });
  return run;
}
const step = (run: string, n: number) => join(run, 'checkpoints', `step_00000${n}`);

t.test('without load_checkpoint_path: the newest valid checkpoint, with --resume only', async (t) => {
  const run = runWith([1, 2]);
  t.same(resumePoint(run, { resume: true }), {
    dir: step(run, 2),
    step: 2,
    fromOtherRun: false,
    sourceRunDir: run,
    sftDone: false,
  });
  t.throws(() => resumePoint(run, {}), /already holds checkpoints; pass --resume/);
  t.equal(resumePoint(join(run, 'new'), {}), null, 'a new directory starts afresh');
  const said: string[] = [];
  t.equal(resumePoint(join(run, 'new'), { resume: true, warn: (m) => said.push(m) }), null, 'also with --resume');
  t.match(said, [/--resume: .*new holds no checkpoint yet; starting at step 0/], 'saying so');
});

t.test('checkpoints that all fail to verify are refused, with or without --resume, never started over', async (t) => {
  const run = runWith([1, 2]);
  for (const n of [1, 2]) appendFileSync(join(step(run, n), 'model', 'model.safetensors'), 'x');
  for (const resume of [true, false]) {
    const said: string[] = [];
    t.throws(
      () => resumePoint(run, { resume, warn: (m) => said.push(m) }),
      /none of its 2 checkpoint\(s\) verifies .*starting afresh would overwrite them and the run's logs/,
      `resume ${resume}`,
    );
    t.equal(said.length, 2, 'each damaged checkpoint named with its cause');
  }
});

t.test('load_checkpoint_path: exactly that checkpoint, not the newest', async (t) => {
  const run = runWith([1, 2]);
  t.same(
    resumePoint(run, { loadCheckpointPath: step(run, 2) }),
    { dir: step(run, 2), step: 2, fromOtherRun: false, sourceRunDir: run, sftDone: false },
    'no --resume needed',
  );
  const fork = join(run, '..', `${run.split('/').at(-1)}-fork`);
  t.same(
    resumePoint(fork, { loadCheckpointPath: step(run, 1), resume: true }),
    { dir: step(run, 1), step: 1, fromOtherRun: true, sourceRunDir: run, sftDone: false },
    "another run's checkpoint into a new directory",
  );
});

t.test('load_checkpoint_path that does not verify is refused, naming the key and the fault', async (t) => {
  const run = runWith([1, 2]);
  appendFileSync(join(step(run, 1), 'optimizer.safetensors'), 'x');
  t.throws(
    () => resumePoint(join(run, 'x'), { loadCheckpointPath: step(run, 1) }),
    new RegExp(
      `trainer\\.load_checkpoint_path: ${step(run, 1)} does not verify: .*optimizer\\.safetensors: checksum mismatch`,
    ),
  );
  t.throws(
    () => resumePoint(join(run, 'x'), { loadCheckpointPath: join(run, 'checkpoints', 'step_000009') }),
    /trainer\.load_checkpoint_path: .*step_000009 does not verify: .*trainer_state\.json: unreadable/,
  );
});

t.test('checkpoints of another line of steps in the run directory are refused', async (t) => {
  const run = runWith([1, 2, 3]);
  t.throws(
    () => resumePoint(run, { loadCheckpointPath: step(run, 1), resume: true }),
    /step_000001 is step 1, but .* also holds later checkpoints \(steps 2, 3\); to restart from step 1, delete those or set trainer\.save_checkpoint_path to a new directory; to continue the run there, pass --resume with trainer\.load_checkpoint_path=null/,
  );
  const other = runWith([1]);
  t.throws(
    () => resumePoint(other, { loadCheckpointPath: step(run, 3) }),
    /step_000003 is not one of .*'s checkpoints, but that directory \(trainer\.save_checkpoint_path\) already holds some/,
  );
});
