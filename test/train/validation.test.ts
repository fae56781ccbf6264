// Validation covers the whole validation split, as the reference validates every batch of it,
// unless data.val_batch_size caps the rows (the first N of val_files).
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrainingConfig, resolveConfigPaths } from '../../src/config/index.js';
import { Trainer } from '../../src/train/trainer.js';
import { tinyModelInit, writeTinyTrainData } from '../helpers/tiny-train-data.js';

const root = mkdtempSync(join(tmpdir(), 'medix-validation-'));
writeTinyTrainData(root);
// 70 validation rows: more than the 64 that data.val_batch_size defaulted to before.
const tiny = readFileSync(join(root, 'train.jsonl'), 'utf8').trim().split('\n');
writeFileSync(join(root, 'val.jsonl'), `${Array.from({ length: 70 }, (_, i) => tiny[i % tiny.length]).join('\n')}\n`);

async function validatedRows(run: string, data: Record<string, unknown>): Promise<Record<string, number>> {
  const raw = {
    data: {
      train_files: 'train.jsonl',
      val_files: 'val.jsonl',
      max_prompt_length: 200,
      max_response_length: 2,
      ...data,
    },
    worker: {
      actor: {
        model: {
          init: { ...tinyModelInit },
        },
      },
      rollout: { n: 2, val_override_config: { n: 1 } },
      reward: { workers: 0 },
    },
    trainer: { save_checkpoint_path: run, threads: 1 },
  };
  const trainer = await Trainer.create(resolveConfigPaths(parseTrainingConfig(raw, 'test'), root), {
    baseDir: root,
    log: () => {},
  });
  return trainer.validate();
}

t.test('every validation row by default; the first val_batch_size rows when it is set', async (t) => {
  t.equal((await validatedRows('all', {}))['val/rows'], 70, 'the whole split');
  t.equal((await validatedRows('capped', { val_batch_size: 3 }))['val/rows'], 3);
  t.equal((await validatedRows('minus-one', { val_batch_size: -1 }))['val/rows'], 70, '-1 says "all" explicitly');
});
