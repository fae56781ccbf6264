// A resumed run continues the model its checkpoint holds: worker.actor.model.init of another shape is
// refused naming what differs (it was ignored before, and config.yaml was rewritten to the wrong
// shape), and the run's config.yaml is kept. The same init resumes.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrainingConfig, resolveConfigPaths } from '../../src/config/index.js';
import { Trainer } from '../../src/train/trainer.js';
import { tinyModelInit, writeTinyTrainData } from '../helpers/tiny-train-data.js';

const root = mkdtempSync(join(tmpdir(), 'medix-resume-init-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
writeTinyTrainData(root);

async function start(init: Record<string, number>, resume: boolean): Promise<Trainer> {
  const raw = {
    data: { train_files: 'train.jsonl', max_prompt_length: 200, max_response_length: 2 },
    worker: { actor: { model: { init } }, rollout: { n: 2 }, reward: { workers: 0 } },
    trainer: { max_steps: 1, save_checkpoint_path: 'run', val_before_train: false, threads: 1 },
  };
  const cfg = resolveConfigPaths(parseTrainingConfig(raw, 'test'), root);
  return Trainer.create(cfg, { baseDir: root, resume, log: () => {} });
}

t.test('resuming with another init shape is refused; the same init resumes', async (t) => {
  await (await start(tinyModelInit, false)).run();
  const files = ['config.yaml', 'metrics.jsonl', 'samples.jsonl'];
  const saved = files.map((f) => readFileSync(join(root, 'run', f), 'utf8'));
  await t.rejects(
    start({ ...tinyModelInit, hidden_size: 24 }, true),
    /worker\.actor\.model\.init asks for hidden_size 24, but the checkpoint .*step_000001 holds a model with hidden_size 16/,
  );
  t.same(
    files.map((f) => readFileSync(join(root, 'run', f), 'utf8')),
    saved,
    "the run's config.yaml and logs are kept",
  );
  t.ok(await start(tinyModelInit, true), 'the same init resumes');
});
