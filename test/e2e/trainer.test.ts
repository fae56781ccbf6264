// The trainer end to end on a tiny model with the real Qwen3 tokenizer: 4 steps equal 2 steps,
// stop, resume, 2 steps (bit for bit: weights, optimizer state, logged rewards), also with KL in the
// reward under an adaptive coefficient and when continuing from trainer.load_checkpoint_path, and a
// run killed at random points of its file writes (also mid-save), once or again and again, always
// resumes to that same result. Also the keys around it: validation before training (once, step 0),
// the rollout seed, online-filtering rounds and a batch they cannot fill. The tiny model earns no
// reward, so every run has an entropy bonus and KL in the reward: each step has a gradient, and each
// bit-for-bit comparison first asserts that the resumed steps moved the weights and AdamW moments.
import t, { type Test } from 'tap';
import { appendFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { stringify } from 'yaml';
import { parseTrainingConfig, resolveConfigPaths } from '../../src/config/index.js';
import { Trainer } from '../../src/train/trainer.js';
import { latestValidCheckpoint, loadCheckpoint } from '../../src/train/checkpoint.js';
import { learningRateAt } from '../../src/rl/lr-schedule.js';
import type { Model } from '../../src/engine/model.js';
import { crashAtWriteEnv } from '../helpers/crash-env.js';
import { rng, sameBits } from '../helpers/numeric.js';
import { tinyModelInit, writeTinyTrainData } from '../helpers/tiny-train-data.js';
import { assertTrained, movementBetween } from '../helpers/trained.js';

const root = mkdtempSync(join(tmpdir(), 'medix-trainer-'));
writeTinyTrainData(root);
// Its runs' checkpoints hold about 3 GB: left behind, a few suites fill a disk.
t.teardown(() => rmSync(root, { recursive: true, force: true }));

function config(run: string, maxSteps: number) {
  return {
    data: {
      train_files: 'train.jsonl',
      val_files: 'train.jsonl',
      max_prompt_length: 200,
      max_response_length: 10,
      rollout_batch_size: 2,
      val_batch_size: 2,
    },
    // Rewards are all 0 here: the KL penalty in the reward gives GRPO advantages, the entropy bonus a gradient of its own.
    algorithm: { adv_estimator: 'grpo', disable_kl: false, kl_coef: 0.05 } as Record<string, unknown>,
    worker: {
      actor: {
        model: {
          init: { ...tinyModelInit },
        },
        global_batch_size: 4,
        micro_batch_size_per_device_for_update: 2,
        entropy_coef: 0.05,
        // A warm-up over 3 optimizer steps: a resume that lost its place in the schedule would redo steps 3
        // and 4 at the learning rates of steps 1 and 2.
        optim: { lr: 1e-2, weight_decay: 0, lr_warmup_steps: 3 },
      },
      rollout: { n: 2, temperature: 1 },
    },
    sft: { epochs: 1, lr: 1e-2, batch_size: 4 },
    trainer: {
      max_steps: maxSteps,
      save_freq: 1,
      save_limit: 3,
      save_checkpoint_path: run,
      val_before_train: false,
      log_samples_every: 1,
      threads: 1,
    },
  };
}

type RawConfig = ReturnType<typeof config> & {
  data: Record<string, unknown>;
  algorithm: Record<string, unknown>;
  worker: { actor: Record<string, unknown>; rollout: Record<string, unknown>; ref?: Record<string, unknown> };
  sft: Record<string, unknown>;
  trainer: Record<string, unknown>;
};

async function train(
  run: string,
  maxSteps: number,
  resume = false,
  change: (c: RawConfig) => void = () => {},
): Promise<void> {
  const raw = config(run, maxSteps) as RawConfig;
  change(raw);
  const trainer = await Trainer.create(resolveConfigPaths(parseTrainingConfig(raw, 'test'), root), {
    baseDir: root,
    resume,
    log: () => {},
  });
  await trainer.run();
}

function metricRows(run: string): Record<string, number>[] {
  return readFileSync(join(root, run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r['reward/overall'] !== undefined);
}

/** The model as checkpointed at `step` of `run`. */
async function modelAt(run: string, step: number): Promise<Model> {
  return (await loadCheckpoint(join(root, run, 'checkpoints', `step_${String(step).padStart(6, '0')}`))).model;
}

async function finalState(run: string): Promise<{ model: Model; step: number }> {
  const latest = latestValidCheckpoint(join(root, run))!;
  const { model, trainer } = await loadCheckpoint(latest.dir);
  return { model, step: trainer.step };
}

function loggedResponses(run: string): string[] {
  return readFileSync(join(root, run, 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).response);
}

function rewards(run: string): number[] {
  return metricRows(run).map((r) => r['reward/overall']);
}

function sameModel(t: Test, a: Model, b: Model, what: string): void {
  let diffs = 0;
  for (const p of a.parameters()) if (!sameBits(a.getParameter(p.name), b.getParameter(p.name))) diffs++;
  t.equal(diffs, 0, `${what}: every parameter bit-identical`);
  const [x, y] = [a.getOptimizerState(), b.getOptimizerState()];
  t.ok(
    x.step === y.step && sameBits(x.m, y.m) && sameBits(x.v, y.v),
    `${what}: optimizer state bit-identical (step ${x.step} and ${y.step})`,
  );
}

t.test('4 steps = 2 steps + resume + 2 steps, bit for bit', async (t) => {
  await train('straight', 4);
  await train('split', 2);
  await t.rejects(train('split', 4), /already holds checkpoints; pass --resume/);
  await train('split', 4, true);
  const lrs = metricRows('straight').map((r) => r['actor/lr']);
  const ramp = [1 / 3, 2 / 3, 1, 1].map((x) => x * 1e-2);
  t.ok(
    lrs.length === 4 && lrs.every((x, i) => Math.abs(x - ramp[i]) < 1e-12),
    `the warm-up ramps over 3 optimizer steps: ${lrs.join(', ')}`,
  );
  t.same(
    metricRows('split').map((r) => r['actor/lr']),
    lrs,
    'the resumed run continues the schedule',
  );
  const a = await finalState('straight');
  const b = await finalState('split');
  t.equal(a.step, 4);
  t.equal(b.step, 4);
  assertTrained(t, await modelAt('straight', 2), a.model, 'steps 3 and 4 (those the resumed run redoes)');
  sameModel(t, a.model, b.model, 'resumed run');
  t.same(rewards('split'), rewards('straight'), 'the same rollouts were rewarded at every step');
  t.same(loggedResponses('split'), loggedResponses('straight'), 'the same responses were sampled at every step');
  const summary = JSON.parse(readFileSync(join(root, 'straight', 'summary.json'), 'utf8'));
  t.ok('heldout_reward_after_sft' in summary && 'heldout_reward_after_rl' in summary, 'summary.json');
  t.ok(existsSync(join(root, 'straight', 'report.html')), 'report.html');
});

t.test('the SFT warm-up keeps its lr by default and decays it over all epochs with cosine', async (t) => {
  const sftLrs = (run: string) =>
    readFileSync(join(root, run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r['sft/epoch'] !== undefined)
      .map((r) => r['sft/lr'] as number);
  // batch_size 3 over the test data's 4 rows: 2 optimizer steps an epoch (3 rows, then 1), 6 in all;
  // each epoch logs the lr of its last step (steps 1, 3, 5).
  const sft = { epochs: 3, lr: 1e-2, batch_size: 3 };
  await train('sft-constant', 1, false, (c) => (c.sft = sft));
  await train('sft-cosine', 1, false, (c) => (c.sft = { ...sft, lr_scheduler_type: 'cosine', min_lr_ratio: 0.1 }));
  t.same(sftLrs('sft-constant'), [1e-2, 1e-2, 1e-2], 'constant: the configured lr at every epoch');
  const schedule = { lr: 1e-2, totalSteps: 6, type: 'cosine', minLrRatio: 0.1 } as const;
  const expected = [1, 3, 5].map((step) => learningRateAt(step, schedule));
  t.same(
    sftLrs('sft-cosine'),
    expected,
    `cosine: on the schedule over all epochs (${expected.map((x) => x.toExponential(3))})`,
  );
});

t.test(
  'without the entropy bonus and KL, these runs would have no gradient: the assertion above would fail',
  async (t) => {
    await train('no-gradient', 2, false, (c) => {
      c.algorithm = { adv_estimator: 'grpo' };
      c.worker.actor.entropy_coef = 0;
    });
    const m = movementBetween(await modelAt('no-gradient', 1), await modelAt('no-gradient', 2));
    t.same(
      metricRows('no-gradient').map((r) => r['advantages/max']),
      [0, 0],
      'reward 0 everywhere: no advantage',
    );
    t.equal(m.optimizerSteps, 1);
    t.same(
      [m.firstMoment, m.secondMoment],
      [0, 0],
      'AdamW moments only decayed (the weights moved on the momentum of the SFT epoch)',
    );
  },
);

t.test(
  'trainer.val_before_train: validated once before any training, logged as step 0, never repeated by a resume',
  async (t) => {
    const valFirst = (c: RawConfig) => (c.trainer.val_before_train = true);
    await train('val-first', 1, false, valFirst);
    await train('val-first', 2, true, valFirst);
    const lines = readFileSync(join(root, 'val-first', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const validations = lines.filter((r) => 'val/overall' in r);
    t.equal(validations.length, 1, 'the resumed run did not validate again');
    t.same(lines[0], validations[0], 'the first line, before the SFT epoch');
    t.equal(lines[0].step, 0);
    const summary = JSON.parse(readFileSync(join(root, 'val-first', 'summary.json'), 'utf8'));
    t.type(summary.heldout_reward_before_train, 'number');
    t.equal(summary.heldout_reward_before_train, lines[0]['val/overall'], 'summary.json after the resume still has it');
    // 'straight' is the same run without the validation.
    const withoutValidation = await loadCheckpoint(join(root, 'straight', 'checkpoints', 'step_000002'));
    sameModel(
      t,
      withoutValidation.model,
      (await finalState('val-first')).model,
      'validating first changes nothing of the training',
    );
  },
);

t.test('worker.rollout.seed is the seed of rollout sampling; trainer.seed when absent', async (t) => {
  const seeds = (rollout: number | undefined, trainer: number) => (c: RawConfig) => {
    c.sft.epochs = 0; // its order follows trainer.seed
    c.trainer.seed = trainer;
    if (rollout !== undefined) c.worker.rollout.seed = rollout;
  };
  await train('rollout-seed-5', 1, false, seeds(5, 1));
  await train('rollout-seed-6', 1, false, seeds(6, 1));
  await train('trainer-seed-5', 1, false, seeds(undefined, 5));
  t.notSame(
    loggedResponses('rollout-seed-6'),
    loggedResponses('rollout-seed-5'),
    'another rollout seed samples other responses',
  );
  t.same(
    loggedResponses('trainer-seed-5'),
    loggedResponses('rollout-seed-5'),
    'the same rollout seed (here by default), the same responses',
  );
  sameModel(
    t,
    (await finalState('rollout-seed-5')).model,
    (await finalState('trainer-seed-5')).model,
    'the same rollout seed',
  );
});

t.test(
  'data.mini_rollout_batch_size: a filtered batch filled one prompt per round samples what one round does',
  async (t) => {
    const keepAll = (mini?: number) => (c: RawConfig) => {
      c.sft.epochs = 0;
      // Bounds no mean reward reaches: every group is kept; max_try_make_batch 0 places no limit on rounds.
      c.algorithm = {
        adv_estimator: 'grpo',
        online_filtering: true,
        filter_low: -1,
        filter_high: 2,
        max_try_make_batch: 0,
      };
      if (mini !== undefined) c.data.mini_rollout_batch_size = mini;
    };
    await train('one-round', 1, false, keepAll());
    await train('prompt-rounds', 1, false, keepAll(1));
    t.equal(metricRows('one-round')[0]['filter/tries'], 1);
    t.equal(metricRows('prompt-rounds')[0]['filter/tries'], 2, 'rollout_batch_size 2 in rounds of 1 prompt');
    t.same(loggedResponses('prompt-rounds'), loggedResponses('one-round'), 'request seeds do not depend on the rounds');
    sameModel(
      t,
      (await finalState('one-round')).model,
      (await finalState('prompt-rounds')).model,
      'rounds of one prompt',
    );
  },
);

t.test('trainer.load_checkpoint_path continues from that checkpoint (not the newest), bit for bit', async (t) => {
  // 'straight' keeps its steps 2 to 4 (save_limit 3): go on from step 2 in a new run directory.
  const step2 = join(root, 'straight', 'checkpoints', 'step_000002');
  await train('forked', 4, false, (c) => (c.trainer.load_checkpoint_path = step2));
  const a = await finalState('straight');
  const b = await finalState('forked');
  t.equal(b.step, 4);
  sameModel(t, a.model, b.model, 'run continued from step 2');
  t.same(rewards('forked'), rewards('straight').slice(2), 'steps 3 and 4 rolled out and rewarded the same');
  const after2 = (run: string) =>
    readFileSync(join(root, run, 'samples.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((x) => x.step > 2)
      .map((x) => x.response);
  t.ok(after2('forked').length > 0, 'samples logged after step 2');
  t.same(after2('forked'), after2('straight'), 'steps 3 and 4 sampled the same responses');

  const damaged = join(root, 'damaged', 'checkpoints', 'step_000003');
  cpSync(join(root, 'straight', 'checkpoints', 'step_000003'), damaged, { recursive: true });
  appendFileSync(join(damaged, 'optimizer.safetensors'), 'x');
  await t.rejects(
    train('from-damaged', 4, false, (c) => (c.trainer.load_checkpoint_path = damaged)),
    /trainer\.load_checkpoint_path: .*step_000003 does not verify: .*optimizer\.safetensors: checksum mismatch/,
  );
  t.notOk(existsSync(join(root, 'from-damaged')), 'nothing written');
});

t.test('KL in the reward: the adaptive coefficient follows the measured KL and resumes bit for bit', async (t) => {
  const target = 1e-3;
  const horizon = 20;
  const withKl = (c: RawConfig) => {
    c.algorithm = {
      adv_estimator: 'grpo',
      disable_kl: false,
      kl_type: 'adaptive',
      kl_coef: 0.05,
      kl_target: target,
      kl_horizon: horizon,
    };
    // The tiny model earns no reward, so an entropy bonus is what moves it away from the reference.
    c.worker.actor.entropy_coef = 0.05;
    c.worker.ref = { micro_batch_size_per_device_for_experience: 1 };
  };
  await train('kl-straight', 4, false, withKl);
  await train('kl-split', 2, false, withKl);
  await train('kl-split', 4, true, withKl);
  const rows = metricRows('kl-straight');
  t.equal(rows.length, 4);
  // Policy and reference hold the same weights at step 1, but their log-probs come from forwards over
  // different micro-batches; OpenBLAS may round those differently (its small-matrix kernels depend on
  // the row count), so the KL is zero up to float rounding, not bit for bit.
  t.ok(
    Math.abs(rows[0]['kl/in_reward']) < 1e-9,
    `step 1 samples from the reference itself (${rows[0]['kl/in_reward']})`,
  );
  t.equal(rows[0]['kl/coef'], 0.05, 'kl_coef to start with');
  for (let i = 1; i < rows.length; i++) {
    const r = rows[i];
    t.ok(r['kl/in_reward'] > 0, `step ${i + 1}: the policy has drifted (KL ${r['kl/in_reward']})`);
    t.equal(r['reward/overall'], 0, `step ${i + 1}: no reward...`);
    t.ok(r['advantages/max'] > 0, `step ${i + 1}: ...yet advantages, from the KL penalty (max ${r['advantages/max']})`);
  }
  for (let i = 0; i + 1 < rows.length; i++) {
    const error = Math.min(0.2, Math.max(-0.2, rows[i]['kl/in_reward'] / target - 1));
    const want = rows[i]['kl/coef'] * (1 + (error * rows[i]['filter/kept_samples']) / horizon);
    t.ok(
      Math.abs(rows[i + 1]['kl/coef'] - want) <= 1e-12 * want,
      `step ${i + 2}: coef ${rows[i + 1]['kl/coef']} from step ${i + 1}'s KL (want ${want})`,
    );
  }
  assertTrained(
    t,
    await modelAt('kl-straight', 2),
    (await finalState('kl-straight')).model,
    'steps 3 and 4 with KL in the reward',
  );
  const pick = (run: string) => metricRows(run).map((r) => [r['kl/coef'], r['kl/in_reward'], r['reward/overall']]);
  t.same(
    pick('kl-split'),
    pick('kl-straight'),
    'the resumed run restored the coefficient: same KL, coefficients and rewards',
  );
  sameModel(
    t,
    (await finalState('kl-straight')).model,
    (await finalState('kl-split')).model,
    'resumed run with KL in the reward',
  );
});

t.test(
  'a run killed at random points of its file writes (also mid-save) always resumes to the same result',
  async (t) => {
    const cli = join(import.meta.dirname, '../../src/cli/medix.ts');
    // Runs `medix train` for `run` in a child process, killed (SIGKILL) just before its crashAt-th
    // change to a file under the run directory (test/helpers/crash-at-write.mjs), or not at all (0).
    const runChild = (run: string, crashAt: number, countFile?: string) =>
      new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res, rej) => {
        writeFileSync(join(root, `${run}.yaml`), stringify(config(run, 4)));
        const env = { ...process.env, ...crashAtWriteEnv({ dir: join(root, run), at: crashAt, countFile }) };
        const child = spawn(
          process.execPath,
          ['--import', 'tsx', cli, 'train', join(root, `${run}.yaml`), '--resume'],
          { stdio: 'ignore', env },
        );
        child.on('error', rej);
        child.on('exit', (code, signal) => res({ code, signal }));
      });
    // Everything a step logs except wall-clock timings.
    const logged = (run: string) =>
      metricRows(run).map((r) => Object.entries(r).filter(([k]) => !k.startsWith('timing/') && !k.startsWith('perf/')));

    // An uninterrupted run in a child process counts the points at which a kill can land.
    const countFile = join(root, 'points');
    t.same(await runChild('uninterrupted', 0, countFile), { code: 0, signal: null });
    const points = Number(readFileSync(countFile, 'utf8'));
    t.ok(points > 100, `${points} file changes in a 4-step run with a checkpoint every step`);
    const expected = await finalState('straight');
    assertTrained(
      t,
      await modelAt('uninterrupted', 2),
      (await finalState('uninterrupted')).model,
      'the uninterrupted child process, steps 3 and 4',
    );
    sameModel(t, expected.model, (await finalState('uninterrupted')).model, 'the uninterrupted child process');

    const seed = Number(process.env.MEDIX_CRASH_SEED ?? 20261123);
    const draw = rng(seed);
    const pick = (hi: number) => 1 + Math.floor(draw() * hi);

    // Killed once at a random point, then resumed to the end: same weights, moments and logs.
    for (let trial = 0; trial < 3; trial++) {
      const run = `killed-once-${trial}`;
      const at = pick(points);
      t.same(
        await runChild(run, at),
        { code: null, signal: 'SIGKILL' },
        `${run}: killed before file change ${at} of ${points} (MEDIX_CRASH_SEED=${seed})`,
      );
      t.same(await runChild(run, 0), { code: 0, signal: null }, `${run}: the resumed run finishes`);
      const b = await finalState(run);
      t.equal(b.step, 4);
      sameModel(t, expected.model, b.model, `${run} (killed at ${at})`);
      t.same(
        logged(run),
        logged('uninterrupted'),
        `${run}: metrics.jsonl holds each step once, as logged without the kill`,
      );
      t.same(loggedResponses(run), loggedResponses('uninterrupted'), `${run}: samples.jsonl likewise`);
    }

    // Killed again and again, each resumed process at a random one of its first 70 file changes (a
    // process writes at least that many before it ends: start-up, log truncation and a checkpoint of
    // about 55), then left to finish.
    const run = 'killed-repeatedly';
    const kills: number[] = [];
    for (let i = 0; i < 4; i++) {
      kills.push(pick(70));
      t.same(
        await runChild(run, kills[i]),
        { code: null, signal: 'SIGKILL' },
        `${run}: kill ${i + 1} before the process's file change ${kills[i]}`,
      );
    }
    t.same(await runChild(run, 0), { code: 0, signal: null }, `${run}: the fifth process finishes`);
    const b = await finalState(run);
    t.equal(b.step, 4);
    sameModel(t, expected.model, b.model, `${run} (killed at ${kills.join(', ')})`);
    t.same(logged(run), logged('uninterrupted'), `${run}: metrics.jsonl as without the kills`);
  },
);

t.test('the KL loss runs against the reference, with no KL in the reward', async (t) => {
  await train('kl-loss', 1, false, (c) => {
    c.algorithm = { adv_estimator: 'grpo', use_kl_loss: true };
    c.worker.ref = { micro_batch_size_per_device_for_experience: 2 };
  });
  const [row] = metricRows('kl-loss');
  t.ok(
    Math.abs(row['actor/kl_loss']) < 1e-9,
    `the first step samples from the reference itself (${row['actor/kl_loss']})`,
  );
  t.notOk('kl/coef' in row || 'kl/in_reward' in row, 'no KL in the reward');
  t.ok(existsSync(join(root, 'kl-loss', 'reference', 'config.json')), 'the reference is kept in the run directory');
  t.test('the step reports its stages as timing/stage/<name>, within the step', async (t) => {
    const stages = ['rollout', 'reward', 'old_logprob', 'ref_logprob', 'advantages', 'update'];
    const times = stages.map((s) => row[`timing/stage/${s}`]);
    t.ok(
      times.every((x) => typeof x === 'number' && x >= 0),
      `every stage timed, none negative: ${stages.map((s, i) => `${s} ${times[i]}`).join(', ')}`,
    );
    const sum = times.reduce((a, x) => a + x, 0);
    t.ok(sum <= row['timing/step'], `the stages (${sum} s) fit in the step (${row['timing/step']} s)`);
    t.same(
      Object.keys(row).filter((k) => k.startsWith('timing/stage/')),
      stages.map((s) => `timing/stage/${s}`),
      'no other stage, in the order they ran',
    );
  });
});

t.test('in bf16 the reference computes in bf16 too: no KL at the first step', async (t) => {
  await train('kl-loss-bf16', 1, false, (c) => {
    c.algorithm = { adv_estimator: 'grpo', use_kl_loss: true };
    (c.worker.actor.model as Record<string, unknown>).dtype = 'bf16';
  });
  const [row] = metricRows('kl-loss-bf16');
  // Summation order alone leaves ~1e-14 (the update packs other micro-batches); an f32 reference beside
  // the bf16 policy gave the rounding's KL here instead, 5.5e-10 for this tiny model.
  t.ok(
    Math.abs(row['actor/kl_loss']) < 1e-12,
    `the first step samples from the reference itself (${row['actor/kl_loss']})`,
  );
});

t.test(
  'online filtering that cannot fill the batch in max_try_make_batch rounds stops the run, or trains on what it kept when told to',
  async (t) => {
    // The tiny untrained model earns reward 0 on every response: each group's mean is at or below
    // filter_low (0.01) and is dropped, so no round can fill the batch.
    const run = async (name: string, algorithm: Record<string, unknown>, data: Record<string, unknown> = {}) => {
      const raw = config(name, 1) as RawConfig;
      raw.algorithm = { adv_estimator: 'grpo', online_filtering: true, max_try_make_batch: 2, ...algorithm };
      Object.assign(raw.data, data);
      const lines: string[] = [];
      const trainer = await Trainer.create(resolveConfigPaths(parseTrainingConfig(raw, 'test'), root), {
        baseDir: root,
        log: (m) => lines.push(m),
      });
      await trainer.run();
      return { row: metricRows(name)[0], warnings: lines.filter((l) => l.includes('online filtering')) };
    };
    await t.rejects(
      run('filter-stops', { filter_low: 0.01 }),
      {
        name: 'UnfilledBatchError',
        message:
          /^medix train: step 1: online filtering kept 0 of 4 prompt groups \(data\.rollout_batch_size needs 2\) after 2 sampling rounds, the most algorithm\.max_try_make_batch allows; stopping \(algorithm\.on_unfilled_batch: error, as the reference\)\..*filter_low\/filter_high \(now 0\.01\/0\.99\).*on_unfilled_batch: train_on_kept/,
      },
      'by default, as the reference: an error naming the keys',
    );
    t.notOk(
      existsSync(join(root, 'filter-stops', 'checkpoints', 'step_000001')),
      'no RL step was trained or saved (step 0 is the SFT warm-up)',
    );

    const starved = await run('filter-starved', { filter_low: 0.01, on_unfilled_batch: 'train_on_kept' });
    t.equal(starved.row['filter/exhausted'], 1, 'filter/exhausted');
    t.equal(starved.row['filter/tries'], 2, 'both rounds were sampled');
    t.equal(starved.row['filter/kept_samples'], 0, 'no group kept');
    t.equal(starved.warnings.length, 1, 'one warning for the step');
    t.match(
      starved.warnings[0],
      /step 1: online filtering kept 0 of 4 prompt groups \(data\.rollout_batch_size needs 2\) after 2 sampling rounds.*this step trains on what was kept \(algorithm\.on_unfilled_batch: train_on_kept\).*algorithm\.max_try_make_batch.*filter_low\/filter_high \(now 0\.01\/0\.99\)/,
    );

    const fed = await run('filter-fed', { filter_low: -1 });
    t.same(
      [fed.row['filter/exhausted'], fed.row['filter/tries'], fed.row['filter/kept_samples']],
      [0, 1, 4],
      'groups with mean 0 > filter_low -1 are kept: one round fills the batch',
    );
    t.same(fed.warnings, [], 'no warning');

    const over = await run('filter-cut', { filter_low: -1 }, { mini_rollout_batch_size: 3 });
    t.same(
      [over.row['filter/tries'], over.row['filter/kept_samples']],
      [1, 4],
      'a round of 3 kept prompts is cut to rollout_batch_size 2 (2 × n = 4 responses)',
    );
  },
);

t.test('ReMax (greedy rollouts give the baselines) and DAPO overlong shaping run through the loop', async (t) => {
  // The ReMax formula itself (reward - the greedy response's reward) is held to its values in test/rl/advantages.test.ts.
  const raw = config('remax', 1) as ReturnType<typeof config> & { algorithm: Record<string, unknown> };
  raw.algorithm = { adv_estimator: 'remax', overlong_buffer: { enable: true, len: 4, penalty_factor: 1 } };
  const trainer = await Trainer.create(resolveConfigPaths(parseTrainingConfig(raw, 'test'), root), {
    baseDir: root,
    log: () => {},
  });
  await trainer.run();
  const row = JSON.parse(
    readFileSync(join(root, 'remax', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .at(-1)!,
  );
  t.equal(row.step, 1);
  t.ok(
    row['overlong/penalized_ratio'] > 0,
    `responses at the 10-token limit are penalised (ratio ${row['overlong/penalized_ratio']})`,
  );
  t.ok(row['overlong/penalty_mean'] < 0);
  t.ok(Number.isFinite(row['actor/loss']), 'the update ran');
  t.type(row['remax/baseline_mean'], 'number', "the greedy responses' rewards were taken as baselines");
});

t.test('worker.actor.model.dtype=bf16: the run trains in bf16, and resumes bit for bit', async (t) => {
  const bf16 = (c: RawConfig) => {
    (c.worker.actor.model as Record<string, unknown>).dtype = 'bf16';
  };
  await train('bf16-straight', 4, false, bf16);
  await train('bf16-split', 2, false, bf16);
  await train('bf16-split', 4, true, bf16);
  const straight = await finalState('bf16-straight');
  const split = await finalState('bf16-split');
  t.equal(split.step, 4);
  assertTrained(t, await modelAt('bf16-split', 2), split.model, 'bf16 steps 3-4 after the resume');
  // The resumed run makes its bf16 copy from the loaded master weights: the same bits as straight on.
  sameModel(t, straight.model, split.model, 'bf16: 2 + resume + 2 vs 4');
  // The key reached the model: the same 2 steps in f32 end elsewhere.
  await train('bf16-f32', 2);
  const f32 = await modelAt('bf16-f32', 2);
  const bf = await modelAt('bf16-split', 2);
  const moved = f32.parameters().filter((p) => !sameBits(f32.getParameter(p.name), bf.getParameter(p.name)));
  t.ok(moved.length > 0, `f32 and bf16 runs differ after 2 steps (${moved.length} tensors)`);
});
