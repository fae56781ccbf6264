// `medix train` never overwrites the config file it was given: a fresh run writes config.yaml, its logs
// and summary into trainer.save_checkpoint_path, so a config file at one of those paths is refused,
// naming it, before anything is written. Continuing a run that has checkpoints from the config.yaml it
// wrote is allowed.
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../../src/engine/model.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { tinyQwen3Config } from '../helpers/tiny-config.js';
import { medix } from './run-medix.js';

const config = (save: string) =>
  `# my notes\ndata:\n  train_files: train.jsonl\nworker:\n  actor:\n    model:\n      model_path: /nowhere\ntrainer:\n  save_checkpoint_path: ${save}\n`;

t.test('a config file where the run writes its own files is refused and kept', async (t) => {
  for (const name of ['config.yaml', 'summary.json']) {
    const dir = mkdtempSync(join(tmpdir(), 'medix-train-files-'));
    const file = join(dir, name);
    writeFileSync(file, config('.'));
    const r = medix('train', file);
    t.not(r.status, 0, `${name}: refused`);
    t.match(r.stderr, `${file}: the run writes its ${name} there`);
    t.equal(readFileSync(file, 'utf8'), config('.'), `${name}: the file is kept, comments and all`);
    t.same(readdirSync(dir), [name], 'nothing else written');
  }
});

t.test("the same file elsewhere, or --resume from a run's own config.yaml, is not refused for it", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medix-train-files-'));
  writeFileSync(join(dir, 'config.yaml'), config('runs/x'));
  writeFileSync(join(dir, 'own.yaml'), config('.'));
  const resume = [join(dir, 'config.yaml'), 'trainer.save_checkpoint_path=.', '--resume'];
  // Without checkpoints the folder holds no run: --resume does not make its config.yaml medix's.
  t.match(medix('train', ...resume).stderr, 'the run writes its config.yaml there', '--resume without a run');
  saveCheckpoint(dir, Model.create(tinyQwen3Config, { seed: 1 }), { step: 1 });
  for (const args of [[join(dir, 'config.yaml')], [join(dir, 'own.yaml')], resume]) {
    const r = medix('train', ...args);
    t.notMatch(r.stderr, 'the run writes its', args.join(' '));
    t.match(r.stderr, /nowhere/, 'it goes on to the model (missing here)');
  }
});
