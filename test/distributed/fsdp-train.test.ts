// `medix train` fully sharded (worker.actor.fsdp.enable_full_shard) under mpirun -np 2 and -np 4,
// on a tiny model with the real tokenizer (KL in the reward against the sharded reference and an
// entropy bonus, so every step has a gradient; 3 prompts per step, so the ranks get unequal shares
// and pad with empty passes): the ranks end where one process ends on the same batches within a
// stated tolerance; each rank's resident weights + gradients + moments, as the engine reports
// them, are its 1/N of the whole plus one gathered unit; a run whose rank is SIGKILLed at a random
// checkpoint file write resumes under 4 processes from the slices 2 wrote, bit for bit; and `medix
// merge` of the 4-rank checkpoint is that model. Skipped, saying why, without MPI or mpirun.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrainingConfig, resolveConfigPaths } from '../../src/config/index.js';
import type { FullShardMemory } from '../../src/engine/full-shard.js';
import type { Model } from '../../src/engine/model.js';
import { loadModel } from '../../src/model/load.js';
import { Trainer } from '../../src/train/trainer.js';
import { latestValidCheckpoint, loadCheckpoint, verifyCheckpoint } from '../../src/train/checkpoint.js';
import { assembleSlices } from '../../src/train/checkpoint-full-shard.js';
import { mergeCheckpoint } from '../../src/train/merge.js';
import { crashAtWriteEnv } from '../helpers/crash-env.js';
import { mpirun, mpiUnavailable } from '../helpers/mpirun.js';
import { rng, sameBits } from '../helpers/numeric.js';
import { writeTinyTrainData } from '../helpers/tiny-train-data.js';
import { skipIfMissing } from '../helpers/system-skip.js';

const script = join(import.meta.dirname, 'ranks', 'fsdp-train.ts');
// The ranks sum each unit's gradients in another order than one process sums its tokens (a
// reduce-scatter), and AdamW turns the rounding of gradients near zero into steps of up to lr
// (1e-2) times a small fraction: after 3 steps the weights agree to 1% of one step.
const WEIGHT_TOLERANCE = 1e-4;
const STEPS = 3;

const root = mkdtempSync(join(tmpdir(), 'medix-fsdp-train-'));
writeTinyTrainData(root);

function config(run: string, fullShard: boolean) {
  return {
    data: {
      train_files: 'train.jsonl',
      max_prompt_length: 200,
      max_response_length: 8,
      rollout_batch_size: 3,
    },
    algorithm: { adv_estimator: 'grpo', disable_kl: false, kl_coef: 0.1, norm_adv_by_std_in_grpo: false },
    worker: {
      actor: {
        model: {
          init: {
            hidden_size: 16,
            intermediate_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            head_dim: 8,
            tie_word_embeddings: false,
            seed: 3,
          },
        },
        global_batch_size: 3,
        micro_batch_size_per_device_for_update: 1,
        micro_batch_size_per_device_for_experience: 1,
        entropy_coef: 0.01,
        optim: { lr: 1e-2, weight_decay: 0.01 },
        fsdp: { enable_full_shard: fullShard },
      },
      rollout: { n: 2, temperature: 1 },
    },
    sft: { epochs: 0 },
    trainer: {
      max_steps: STEPS,
      save_freq: 1,
      save_limit: 0,
      save_checkpoint_path: run,
      val_before_train: false,
      threads: 1,
    },
  };
}

/** `medix train` of `run` under mpirun -np `ranks`: each rank's final weights and memory report. */
async function mpirunTrain(ranks: number, run: string, extra: string[] = [], env = {}) {
  const file = join(root, `${run}.json`);
  writeFileSync(file, JSON.stringify(config(run, true)));
  const out = mkdtempSync(join(root, `${run}-out-`));
  const r = await mpirun(ranks, script, [file, root, out, ...extra], env);
  return {
    ...r,
    weights: () =>
      [...Array(ranks).keys()].map((k) => new Float32Array(readFileSync(join(out, `rank-${k}.f32`)).buffer)),
    memory: () =>
      [...Array(ranks).keys()].map(
        (k) => JSON.parse(readFileSync(join(out, `rank-${k}.json`), 'utf8')).memory as FullShardMemory,
      ),
  };
}

const flat = (m: Model) => new Float32Array(m.parameters().flatMap((p) => [...m.getParameter(p.name)]));
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const lastDir = (run: string) => latestValidCheckpoint(join(root, run), () => {})!.dir;

const unavailable = mpiUnavailable();
t.test('medix train fully sharded', skipIfMissing(unavailable, process.env.MEDIX_NO_MPI === '1'), async (t) => {
  const one = await Trainer.create(resolveConfigPaths(parseTrainingConfig(config('one', false), 'test'), root), {
    baseDir: root,
    log: () => {},
  });
  await one.run();
  const single = flat(one.policy);
  const initial = flat((await loadCheckpoint(join(root, 'one', 'checkpoints', 'step_000001'))).model);

  // The root's changes to checkpoint files are counted for the kill below.
  const points = join(root, 'points');
  const crashDir = (run: string) => join(root, run, 'checkpoints');
  const two = await mpirunTrain(
    2,
    'two',
    [],
    crashAtWriteEnv({ dir: crashDir('two'), rank: 0, at: 0, countFile: points }),
  );
  t.equal(two.code, 0, `mpirun -np 2 exits 0\n${two.output}`);
  if (two.code !== 0) return;

  t.test('2 ranks end where one process ends; each holds 1/2 of the state plus one unit', async (t) => {
    const [w0, w1] = two.weights();
    t.ok(sameBits(w0, w1), 'both ranks gather bit-identical weights');
    const diff = maxAbsDiff(w0, single);
    t.ok(
      diff <= WEIGHT_TOLERANCE,
      `weights within ${WEIGHT_TOLERANCE} of one process after ${STEPS} steps (max diff ${diff})`,
    );
    const moved = maxAbsDiff(single, initial);
    t.ok(moved > 10 * WEIGHT_TOLERANCE, `steps 2-${STEPS} moved the weights far beyond the tolerance (${moved})`);
    for (const [r, m] of two.memory().entries()) {
      const resident = m.sliceBytes + m.peakGatheredBytes;
      const formula = m.wholeStateBytes / 2 + m.largestUnitBytes;
      const ratio = (resident / m.wholeStateBytes).toFixed(3);
      const what = `rank ${r}: resident ${resident} bytes ≈ whole/2 + one unit = ${formula} (ratio ${ratio})`;
      // Edge pages of the gathered units and each unit's padding to a multiple of the ranks.
      t.ok(Math.abs(resident - formula) <= 0.02 * m.wholeStateBytes, what);
      t.ok(m.peakGatheredBytes >= m.largestUnitBytes, `rank ${r}: the largest unit was gathered whole`);
    }
    const state = verifyCheckpoint(lastDir('two'));
    t.equal(state.shards?.worldSize, 2, 'the checkpoint is written by two ranks');
    const assembled = flat(assembleSlices(lastDir('two'), state).model);
    t.ok(sameBits(assembled, w0), "the slices assemble into exactly the ranks' weights");
  });

  t.test(
    'killed at a random checkpoint file write under 2 ranks, resumed under 4 bit for bit; merge of 4 ranks',
    async (t) => {
      const seed = Number(process.env.MEDIX_CRASH_SEED ?? Date.now() % 100000);
      const count = Number(readFileSync(points, 'utf8'));
      const at = 1 + Math.floor(rng(seed)() * count);
      const killed = await mpirunTrain(2, 'killed', [], crashAtWriteEnv({ dir: crashDir('killed'), rank: 0, at }));
      t.ok(
        killed.code !== 0,
        `rank 0 killed before checkpoint file change ${at} of ${count} (MEDIX_CRASH_SEED=${seed})`,
      );
      const from = latestValidCheckpoint(join(root, 'killed'), () => {});
      const resaved = join(root, 'resaved');
      const four = await mpirunTrain(4, 'killed', ['--resume', '--resave', resaved]);
      t.equal(four.code, 0, `mpirun -np 4 --resume exits 0\n${four.output}`);
      if (four.code !== 0) return;
      if (from) {
        // What 4 ranks resumed with, written again by them: the 2 ranks' checkpoint, bit for bit.
        const a = assembleSlices(from.dir, verifyCheckpoint(from.dir));
        const again = join(resaved, 'checkpoints', 'step_000000');
        const b = assembleSlices(again, verifyCheckpoint(again));
        t.ok(
          sameBits(flat(a.model), flat(b.model)),
          `weights of step ${from.trainer.step} resumed by 4 ranks bit for bit`,
        );
        t.ok(sameBits(a.m, b.m) && sameBits(a.v, b.v), 'both moments resumed bit for bit');
      } else t.pass('killed before its first checkpoint: the resumed run started afresh');
      const w = four.weights()[0];
      const diff = maxAbsDiff(w, single);
      t.ok(
        diff <= WEIGHT_TOLERANCE,
        `the resumed run ends within ${WEIGHT_TOLERANCE} of one process (max diff ${diff})`,
      );

      const last = lastDir('killed');
      t.equal(verifyCheckpoint(last).shards?.worldSize, 4, 'its last checkpoint is written by 4 ranks');
      const merged = join(root, 'merged');
      await mergeCheckpoint(last, merged, { dtype: 'f32' });
      t.ok(
        sameBits(flat(await loadModel(merged)), w),
        "medix merge of the 4-rank checkpoint is exactly the ranks' model",
      );
      const plain = await loadCheckpoint(last);
      t.ok(sameBits(flat(plain.model), w), 'and it loads into one unsharded process');
    },
  );
});
