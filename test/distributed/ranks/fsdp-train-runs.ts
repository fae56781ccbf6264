// The runs of test/distributed/fsdp-train.test.ts and fsdp-resume.test.ts: `medix train` of a tiny
// model with the real tokenizer (KL in the reward against the reference and an entropy bonus, so
// every step has a gradient; 3 prompts per step and micro-batches of 1, so the ranks get unequal
// shares and pad with empty passes; one SFT epoch first, checkpointed as step 0), in this process or
// fully sharded under mpirun.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FullShardMemory } from '../../../src/engine/full-shard.js';
import type { Model } from '../../../src/engine/model.js';
import { parseTrainingConfig, resolveConfigPaths } from '../../../src/config/index.js';
import { Trainer } from '../../../src/train/trainer.js';
import { mpirun } from '../../helpers/mpirun.js';
import { tinyModelInit } from '../../helpers/tiny-train-data.js';

const script = join(import.meta.dirname, 'fsdp-train.ts');

export function fsdpTrainConfig(run: string, fullShard: boolean, steps: number) {
  return {
    data: { train_files: 'train.jsonl', max_prompt_length: 200, max_response_length: 8, rollout_batch_size: 3 },
    algorithm: { adv_estimator: 'grpo', disable_kl: false, kl_coef: 0.1, norm_adv_by_std_in_grpo: false },
    worker: {
      actor: {
        model: {
          init: { ...tinyModelInit, num_hidden_layers: 2, tie_word_embeddings: false },
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
    sft: { epochs: 1, lr: 1e-2, batch_size: 4 },
    trainer: {
      max_steps: steps,
      save_freq: 1,
      save_limit: 0,
      save_checkpoint_path: run,
      val_before_train: false,
      threads: 1,
    },
  };
}

/** `run` trained in this process without sharding; the trained model. */
export async function trainHere(root: string, run: string, steps: number): Promise<Model> {
  const cfg = resolveConfigPaths(parseTrainingConfig(fsdpTrainConfig(run, false, steps), 'test'), root);
  const trainer = await Trainer.create(cfg, { baseDir: root, log: () => {} });
  await trainer.run();
  return trainer.policy;
}

/** `run` trained fully sharded under mpirun -np `ranks`: its exit, each rank's final weights and memory report. */
export async function mpirunTrain(
  root: string,
  ranks: number,
  run: string,
  steps: number,
  extra: string[] = [],
  env: Record<string, string> = {},
) {
  const file = join(root, `${run}.json`);
  writeFileSync(file, JSON.stringify(fsdpTrainConfig(run, true, steps)));
  const out = mkdtempSync(join(root, `${run}-out-`));
  const r = await mpirun(ranks, script, [file, root, out, ...extra], env);
  const each = <T>(read: (k: number) => T) => [...Array(ranks).keys()].map(read);
  return {
    ...r,
    weights: () => each((k) => new Float32Array(readFileSync(join(out, `rank-${k}.f32`)).buffer)),
    memory: () => each((k) => JSON.parse(readFileSync(join(out, `rank-${k}.json`), 'utf8')).memory as FullShardMemory),
  };
}

export const flat = (m: Model) => new Float32Array(m.parameters().flatMap((p) => [...m.getParameter(p.name)]));
export const maxAbsDiff = (a: Float32Array, b: Float32Array) =>
  a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
