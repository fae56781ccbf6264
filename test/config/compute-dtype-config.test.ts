// worker.actor.model.dtype: the dtype of the actor's matrix products (f32 master weights either way):
// f32 by default, bf16 on request, anything else refused naming the key and the allowed values.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainingConfig } from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'medix-dtype-config-'));
const file = join(dir, 'minimal.yaml');
writeFileSync(
  file,
  'data:\n  train_files: data/train.parquet\nworker:\n  actor:\n    model:\n      model_path: /models/m\n',
);

t.test('f32 by default, bf16 on request, others refused with the key and the allowed values', async (t) => {
  t.equal(loadTrainingConfig(file).worker.actor.model.dtype, 'f32', 'default f32');
  t.equal(loadTrainingConfig(file, ['worker.actor.model.dtype=bf16']).worker.actor.model.dtype, 'bf16');
  t.throws(
    () => loadTrainingConfig(file, ['worker.actor.model.dtype=fp16']),
    /worker.actor.model.dtype: 'fp16' is not allowed; allowed: f32, bf16/,
  );
});
