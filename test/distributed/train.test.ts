// `medix train` as two ranks under mpirun, on a tiny model with the real tokenizer (KL in the
// reward and an entropy bonus, so every step has a gradient; 3 prompts per step and mini-batches of
// 3 responses, so the ranks get unequal shares): the run ends where one process ends on the same batches, up to float rounding;
// it writes its logs once; each comparison first asserts that the steps moved the weights and both
// AdamW moments; stopped after 2 steps and resumed under mpirun it ends bit for bit where
// a straight 4-step run ends, also when either rank was SIGKILLed at a random point of its file
// writes (mid-save included); its sharded checkpoint holds exactly the weights every rank trained
// and continues in a single process. Skipped, saying why, without MPI support or mpirun.
import t, { type Test } from 'tap';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrainingConfig, resolveConfigPaths } from '../../src/config/index.js';
import type { Model } from '../../src/engine/model.js';
import { Trainer } from '../../src/train/trainer.js';
import { latestValidCheckpoint, loadCheckpoint } from '../../src/train/checkpoint.js';
import { crashAtWriteEnv } from '../helpers/crash-env.js';
import { mpirun, mpiUnavailable } from '../helpers/mpirun.js';
import { rng, sameBits } from '../helpers/numeric.js';
import { tinyModelInit, writeTinyTrainData } from '../helpers/tiny-train-data.js';
import { skipIfMissing } from '../helpers/system-skip.js';
import { assertTrained } from '../helpers/trained.js';

const script = join(import.meta.dirname, 'ranks', 'train.ts');
// Two ranks sum in another order than one process, and AdamW turns the rounding of gradients near
// zero into steps of up to lr (1e-2) times a small fraction: after 2 steps the weights agreed to
// 1.4% of one step (1.4e-4; which gradients sit near zero changes with the last bits of any op, e.g.
// a vector exp in SwiGLU), and the tolerance allows about twice that. AdamW does not see a
// gradient's scale, so the first moments are compared too.
const WEIGHT_TOLERANCE = 3e-4;
const MOMENT_TOLERANCE = 1e-3; // relative to the largest first moment

const root = mkdtempSync(join(tmpdir(), 'medix-dist-train-'));
writeTinyTrainData(root);

function config(run: string, maxSteps: number) {
  return {
    data: {
      train_files: 'train.jsonl',
      val_files: 'train.jsonl',
      max_prompt_length: 200,
      max_response_length: 8,
      rollout_batch_size: 3,
      val_batch_size: 3,
    },
    // GRPO's division by a group's reward std would amplify rounding without bound when a group's
    // rewards nearly agree (here they differ only by their small KL penalties): off in this test.
    algorithm: { adv_estimator: 'grpo', disable_kl: false, kl_coef: 0.1, norm_adv_by_std_in_grpo: false },
    worker: {
      actor: {
        model: {
          init: { ...tinyModelInit },
        },
        global_batch_size: 3,
        micro_batch_size_per_device_for_update: 1,
        entropy_coef: 0.01,
        optim: { lr: 1e-2, weight_decay: 0 },
      },
      rollout: { n: 2, temperature: 1 },
    },
    sft: { epochs: 1, lr: 1e-2, batch_size: 4 },
    trainer: {
      max_steps: maxSteps,
      save_freq: 1,
      save_limit: 2,
      save_checkpoint_path: run,
      val_before_train: false,
      log_samples_every: 1,
      threads: 1,
    },
  };
}

async function trainHere(run: string, maxSteps: number, resume = false): Promise<void> {
  const trainer = await Trainer.create(resolveConfigPaths(parseTrainingConfig(config(run, maxSteps), 'test'), root), {
    baseDir: root,
    resume,
    log: () => {},
  });
  await trainer.run();
}

/** `medix train` of `run` under mpirun -np 2, its exit code and output. */
function mpirunTrain(run: string, maxSteps: number, resume: boolean, env: Record<string, string> = {}) {
  const file = join(root, `${run}-${maxSteps}.json`);
  writeFileSync(file, JSON.stringify(config(run, maxSteps)));
  return mpirun(2, script, [file, root, root, ...(resume ? ['--resume'] : [])], env);
}

/** One rank of `run` killed just before its crashAt-th change to a file of the run (0: never). */
const crashEnv = (run: string, rank: number, crashAt: number, countFile?: string) =>
  crashAtWriteEnv({ dir: join(root, run), rank, at: crashAt, countFile });

/** Trains under mpirun -np 2; returns each rank's final in-memory weights. */
async function trainTwoRanks(
  t: Test,
  run: string,
  maxSteps: number,
  resume = false,
  env: Record<string, string> = {},
): Promise<Float32Array[]> {
  const r = await mpirunTrain(run, maxSteps, resume, env);
  t.equal(r.code, 0, `mpirun ${run} (${maxSteps} steps) exits 0`);
  if (r.code !== 0) throw new Error(r.output);
  return [0, 1].map((rank) => new Float32Array(new Uint8Array(readFileSync(join(root, `rank-${rank}.f32`))).buffer));
}

/** The model as checkpointed at `step` of `run`. */
async function checkpointAt(run: string, step: number): Promise<Model> {
  return (await loadCheckpoint(join(root, run, 'checkpoints', `step_${String(step).padStart(6, '0')}`))).model;
}

async function lastCheckpoint(run: string) {
  const latest = latestValidCheckpoint(join(root, run))!;
  return { ...(await loadCheckpoint(latest.dir)), dir: latest.dir };
}

const flat = (m: Model) => new Float32Array(m.parameters().flatMap((p) => [...m.getParameter(p.name)]));
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const metrics = (run: string) =>
  readFileSync(join(root, run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

const unavailable = mpiUnavailable();
t.test('medix train on two ranks', skipIfMissing(unavailable, process.env.MEDIX_NO_MPI === '1'), async (t) => {
  await trainHere('one', 2);
  const [rank0, rank1] = await trainTwoRanks(t, 'two', 2);

  t.test('two ranks end where one process ends', async (t) => {
    t.ok(sameBits(rank0, rank1), 'both ranks hold bit-identical weights');
    const one = await lastCheckpoint('one');
    const two = await lastCheckpoint('two');
    t.equal(two.trainer.step, 2);
    const diff = maxAbsDiff(flat(two.model), flat(one.model));
    t.ok(diff <= WEIGHT_TOLERANCE, `weights within ${WEIGHT_TOLERANCE} of one process (max diff ${diff})`);
    assertTrained(t, await checkpointAt('one', 1), one.model, 'one process, step 2');
    assertTrained(t, await checkpointAt('two', 1), two.model, 'two ranks, step 2');
    t.ok(
      maxAbsDiff(flat(one.model), flat(await checkpointAt('one', 1))) > 1e-3,
      'the second step moved the weights by more than the tolerance',
    );
    const [m1, m2] = [one.model.getOptimizerState().m, two.model.getOptimizerState().m];
    const scale = m1.reduce((m, x) => Math.max(m, Math.abs(x)), 0);
    t.ok(
      maxAbsDiff(m1, m2) <= MOMENT_TOLERANCE * scale,
      `first moments within ${MOMENT_TOLERANCE} of the largest (${maxAbsDiff(m1, m2)} of ${scale})`,
    );
    const [a, b] = [metrics('one'), metrics('two')];
    t.same(
      b.map((r) => r.step),
      [0, 1, 2],
      'one metrics row per step: only the root logs',
    );
    for (const key of ['reward/overall', 'response_length/mean', 'filter/kept_samples'])
      t.same(
        b.map((r) => r[key]),
        a.map((r) => r[key]),
        `${key} equal at every step`,
      );
    for (const key of ['actor/loss', 'kl/in_reward'])
      for (let i = 1; i < a.length; i++) {
        const [x, y] = [a[i][key], b[i][key]];
        t.ok(Math.abs(x - y) <= 1e-4 * Math.abs(x), `step ${i}: ${key} ${y} = ${x} (one process)`);
      }
  });

  t.test(
    'stopped and resumed under mpirun: bit for bit the straight run; the checkpoint is what the ranks trained',
    async (t) => {
      // The root's changes to files of the run are counted for the kill test below.
      const straight = await trainTwoRanks(t, 'straight', 4, false, crashEnv('straight', 0, 0, join(root, 'points-0')));
      const resumed = await trainTwoRanks(t, 'two', 4, true);
      t.ok(sameBits(resumed[0], straight[0]), 'resumed weights equal the straight run bit for bit');
      const [a, b] = [await lastCheckpoint('straight'), await lastCheckpoint('two')];
      t.equal(b.trainer.step, 4);
      assertTrained(t, await checkpointAt('straight', 3), a.model, 'the straight run, step 4');
      const [x, y] = [a.model.getOptimizerState(), b.model.getOptimizerState()];
      t.ok(x.step === y.step && sameBits(x.m, y.m) && sameBits(x.v, y.v), 'optimizer moments and step bit-identical');
      t.same(
        metrics('two').map((r) => r['reward/overall']),
        metrics('straight').map((r) => r['reward/overall']),
        'the same rewards at every step',
      );
      t.ok(sameBits(flat(a.model), straight[0]), "the sharded checkpoint holds exactly the ranks' weights");
      const state = JSON.parse(readFileSync(join(a.dir, 'trainer_state.json'), 'utf8'));
      t.equal(state.shards.worldSize, 2, 'written by two ranks');
    },
  );

  t.test(
    'either rank killed at a random point of its file writes (also mid-save): the run resumes under mpirun to the straight run, bit for bit',
    async (t) => {
      const straight = await lastCheckpoint('straight');
      t.equal(
        (await mpirunTrain('counted', 4, false, crashEnv('counted', 1, 0, join(root, 'points-1')))).code,
        0,
        "an uninterrupted run counts rank 1's changes",
      );
      const draw = rng(Number(process.env.MEDIX_CRASH_SEED ?? 20261123));
      for (const rank of [1, 0]) {
        const points = Number(readFileSync(join(root, `points-${rank}`), 'utf8'));
        const at = 1 + Math.floor(draw() * points);
        const run = `killed-rank-${rank}`;
        const killed = await mpirunTrain(run, 4, false, crashEnv(run, rank, at));
        t.ok(
          killed.code !== 0 && /signal 9|Killed/.test(killed.output),
          `rank ${rank} killed before its file change ${at} of ${points}; mpirun ends the run (exit ${killed.code})`,
        );
        const resumed = await trainTwoRanks(t, run, 4, true);
        const b = await lastCheckpoint(run);
        t.equal(b.trainer.step, 4);
        t.ok(sameBits(resumed[0], flat(straight.model)), `${run}: resumed weights equal the straight run bit for bit`);
        const [x, y] = [straight.model.getOptimizerState(), b.model.getOptimizerState()];
        t.ok(
          x.step === y.step && sameBits(x.m, y.m) && sameBits(x.v, y.v),
          `${run}: optimizer moments and step bit-identical`,
        );
        t.same(
          metrics(run).map((r) => r['reward/overall']),
          metrics('straight').map((r) => r['reward/overall']),
          `${run}: one metrics row per step, the same rewards`,
        );
      }
    },
  );

  t.test('a checkpoint of two ranks continues in one process', async (t) => {
    // The straight two-rank run as it was at step 3, then its last step in one process.
    cpSync(join(root, 'straight'), join(root, 'continued'), { recursive: true });
    rmSync(join(root, 'continued', 'checkpoints', 'step_000004'), { recursive: true });
    await trainHere('continued', 4, true);
    const [a, b] = [await lastCheckpoint('straight'), await lastCheckpoint('continued')];
    t.equal(b.trainer.step, 4);
    t.equal(
      JSON.parse(readFileSync(join(b.dir, 'trainer_state.json'), 'utf8')).shards,
      undefined,
      'written in the one-process layout',
    );
    const diff = maxAbsDiff(flat(b.model), flat(a.model));
    t.ok(diff <= WEIGHT_TOLERANCE, `ends within ${WEIGHT_TOLERANCE} of the two-rank run (max diff ${diff})`);
  });
});
