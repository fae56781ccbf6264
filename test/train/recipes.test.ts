// The 30B-A3B Thinking DAPO recipe exists but needs a mixture-of-experts model, which medix cannot
// run yet: `medix train` must refuse it at once with a message naming the model's config.json and
// model_type, before reading data or writing to the run directory. The tiny Qwen3-VL-MoE fixture
// stands in for the 30B checkpoint (same model_type).
import t from 'tap';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainingConfig } from '../../src/config/index.js';
import { Trainer, configDir } from '../../src/train/trainer.js';

const recipe = join(import.meta.dirname, '../../examples/medix_r1_30b_a3b_dapo.yaml');
const moe = join(import.meta.dirname, '../fixtures/hf/qwen3vl_moe_tiny');

t.test('the 30B-A3B DAPO recipe is refused with a clear message until MoE models run', async (t) => {
  const run = join(mkdtempSync(join(tmpdir(), 'medix-recipe-')), 'run');
  const cfg = loadTrainingConfig(recipe, [`worker.actor.model.model_path=${moe}`, `trainer.save_checkpoint_path=${run}`]);
  t.equal(cfg.data.train_files, '/data/medix-r1/train.parquet', 'the data the recipe names does not exist here: the refusal must come first');
  await t.rejects(
    Trainer.create(cfg, { baseDir: configDir(recipe), log: () => {} }),
    /qwen3vl_moe_tiny\/config\.json: model_type "qwen3_vl_moe" is a mixture-of-experts model, which medix cannot run yet \(only the dense "qwen3" and "qwen3_vl" models\)/,
  );
  t.notOk(existsSync(run), 'nothing written');
});
