// Training a mixture-of-experts policy end to end: `medix create-model --preset tiny-moe` writes a
// model every tool loads (per-expert tensors, as transformers expects for qwen3_moe); the trainer
// on it logs the load-balancing loss, each sparse layer's tokens per expert and load, and no dropped
// token in metrics.jsonl, moves the weights (router included), and 4 steps equal 2 steps + resume +
// 2 steps, bit for bit.
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parseTrainingConfig, resolveConfigPaths } from '../../src/config/index.js';
import { Trainer } from '../../src/train/trainer.js';
import { latestValidCheckpoint, loadCheckpoint } from '../../src/train/checkpoint.js';
import { loadModel } from '../../src/model/load.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { medix } from '../cli/run-medix.js';
import { sameBits } from '../helpers/numeric.js';
import { writeTinyTrainData } from '../helpers/tiny-train-data.js';

const root = mkdtempSync(join(tmpdir(), 'medix-moe-train-'));
writeTinyTrainData(root);
const modelDir = join(root, 'tiny-moe');

t.test('create-model --preset tiny-moe writes a qwen3_moe directory with per-expert tensors', async (t) => {
  const r = medix('create-model', '--preset', 'tiny-moe', '--out', modelDir, '--seed', '2');
  t.equal(r.status, 0, r.stderr);
  const config = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8'));
  t.equal(config.model_type, 'qwen3_moe');
  t.same([config.num_experts, config.num_experts_per_tok, config.moe_intermediate_size], [8, 2, 32]);
  const st = SafetensorsFile.open(join(modelDir, 'model.safetensors'));
  t.same(st.tensors.get('model.layers.1.mlp.experts.7.down_proj.weight')?.shape, [64, 32], 'one tensor per expert');
  st.close();
  const model = await loadModel(modelDir);
  t.equal(model.config.numExperts, 8);
});

function config(run: string, maxSteps: number) {
  return {
    data: {
      train_files: 'train.jsonl',
      val_files: 'train.jsonl',
      max_prompt_length: 200,
      max_response_length: 8,
      rollout_batch_size: 2,
      val_batch_size: 2,
    },
    algorithm: { adv_estimator: 'grpo' },
    worker: {
      actor: {
        model: { model_path: modelDir },
        global_batch_size: 4,
        micro_batch_size_per_device_for_update: 2,
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
      threads: 1,
    },
  };
}

async function train(run: string, maxSteps: number, resume = false): Promise<void> {
  const trainer = await Trainer.create(resolveConfigPaths(parseTrainingConfig(config(run, maxSteps), 'test'), root), {
    baseDir: root,
    resume,
    log: () => {},
  });
  await trainer.run();
}

t.test('4 steps = 2 steps + resume + 2 steps, bit for bit; routing logged', async (t) => {
  await train('straight', 4);
  await train('split', 2);
  await train('split', 4, true);
  const [a, b] = await Promise.all(
    ['straight', 'split'].map(async (run) => (await loadCheckpoint(latestValidCheckpoint(join(root, run))!.dir)).model),
  );
  const start = await loadModel(modelDir);
  let diffs = 0;
  for (const p of a.parameters()) if (!sameBits(a.getParameter(p.name), b.getParameter(p.name))) diffs++;
  t.equal(diffs, 0, 'every parameter bit-identical after the resume');
  const [x, y] = [a.getOptimizerState(), b.getOptimizerState()];
  t.ok(x.step === y.step && sameBits(x.m, y.m) && sameBits(x.v, y.v), 'optimizer state bit-identical');
  for (const name of ['model.layers.0.mlp.gate.weight', 'model.layers.1.mlp.experts.gate_up_proj'])
    t.notOk(sameBits(a.getParameter(name), start.getParameter(name)), `${name} moved`);
  const rows = readFileSync(join(root, 'straight', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r['actor/moe_aux_loss'] !== undefined);
  t.ok(rows.length >= 4, `${rows.length} rows with the load-balancing loss`);
  for (const r of rows) {
    t.ok(
      Number.isFinite(r['actor/moe_aux_loss']) && r['actor/moe_aux_loss'] > 0,
      `aux loss ${r['actor/moe_aux_loss']}`,
    );
    for (const k of [0, 1]) {
      t.ok(
        r[`actor/moe_layer${k}_max_load`] >= r[`actor/moe_layer${k}_mean_load`] &&
          r[`actor/moe_layer${k}_mean_load`] > 0,
        `layer ${k}: max >= mean load > 0`,
      );
      const perExpert: number[] = r[`actor/moe_layer${k}_tokens_per_expert`];
      t.equal(perExpert.length, 8, `layer ${k}: tokens per expert, one count per expert`);
      t.same(
        [Math.max(...perExpert), perExpert.reduce((a, b) => a + b, 0) / 8],
        [r[`actor/moe_layer${k}_max_load`], r[`actor/moe_layer${k}_mean_load`]],
        `layer ${k}: max and mean of those counts`,
      );
    }
    t.equal(r['actor/moe_dropped_tokens'], 0, 'no token dropped');
  }
  const split = readFileSync(join(root, 'split', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .filter((r) => r['actor/moe_aux_loss'] !== undefined);
  t.same(
    split.map((r) => r['actor/moe_aux_loss']),
    rows.map((r) => r['actor/moe_aux_loss']),
    'the same aux losses logged by the resumed run',
  );
});
