// sft.train_files: the warm-up trains on its rows (the same rows from another file give the same weights
// bit for bit, other rows other weights), RL on data.train_files' only; unset, the warm-up trains on
// data.train_files as before. A file without a usable row is refused by name. Also the per-modality
// held-out accuracy in summary.json.
import t from 'tap';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseTrainingConfig, resolveConfigPaths } from '../../src/config/index.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { Trainer, type TrainSummary } from '../../src/train/trainer.js';
import type { Model } from '../../src/engine/model.js';
import { sameBits } from '../helpers/numeric.js';
import { tinyModelInit, writeTinyTrainData } from '../helpers/tiny-train-data.js';

const root = mkdtempSync(join(tmpdir(), 'medix-sft-rows-'));
t.teardown(() => rmSync(root, { recursive: true, force: true }));
writeTinyTrainData(root);
copyFileSync(join(root, 'train.jsonl'), join(root, 'sft-same.jsonl'));
const trainRows = readFileSync(join(root, 'train.jsonl'), 'utf8').trim().split('\n');
writeFileSync(join(root, 'sft-other.jsonl'), `${trainRows.slice(2).join('\n')}\n`);
writeFileSync(join(root, 'rl-other.jsonl'), `${trainRows.slice(0, 2).join('\n')}\n`);

async function warmUp(
  run: string,
  sftFile?: string,
  trainFile = 'train.jsonl',
): Promise<{ model: Model; log: string[]; s: TrainSummary }> {
  const raw = {
    data: { train_files: trainFile, val_files: 'train.jsonl', max_prompt_length: 200, max_response_length: 4 },
    worker: {
      actor: { model: { init: { ...tinyModelInit } }, global_batch_size: 4, micro_batch_size_per_device_for_update: 4 },
      rollout: { n: 2, val_override_config: { n: 1 } },
      reward: { workers: 0 },
    },
    sft: { epochs: 2, lr: 1e-2, batch_size: 2, ...(sftFile ? { train_files: sftFile } : {}) },
    trainer: { max_steps: 1, save_checkpoint_path: run, save_limit: 0, val_before_train: false, threads: 1 },
  };
  const log: string[] = [];
  const trainer = await Trainer.create(resolveConfigPaths(parseTrainingConfig(raw, 'test'), root), {
    baseDir: root,
    log: (m) => log.push(m),
  });
  const s = await trainer.run();
  // The checkpoint written after the warm-up, before any RL step.
  return { model: (await loadCheckpoint(join(root, run, 'checkpoints', 'step_000000'))).model, log, s };
}

const sameWeights = (a: Model, b: Model) =>
  a.parameters().every((p) => sameBits(a.getParameter(p.name), b.getParameter(p.name)));

t.test("the warm-up trains on sft.train_files' rows", async (t) => {
  const base = await warmUp('default');
  const same = await warmUp('same', 'sft-same.jsonl');
  const other = await warmUp('other', 'sft-other.jsonl', 'rl-other.jsonl');
  t.match(base.log.join('\n'), /SFT warm-up: 2 epochs over 4 rows of .*train\.jsonl/);
  t.match(other.log.join('\n'), /SFT warm-up: 2 epochs over 2 rows of .*sft-other\.jsonl/);
  t.ok(sameWeights(base.model, same.model), 'the same rows in another file: the same weights, bit for bit');
  t.notOk(sameWeights(base.model, other.model), 'other rows: other weights');
  // RL draws data.train_files' rows (the first two), never the warm-up's (the last two).
  const rlAnswers = readFileSync(join(root, 'other', 'samples.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).ground_truth);
  const rlRows = trainRows.slice(0, 2).map((l) => JSON.parse(l).solution);
  t.ok(
    rlAnswers.length > 0 && rlAnswers.every((a) => rlRows.includes(a)),
    `RL's rows (${[...new Set(rlAnswers)].join(', ')}) are data.train_files'`,
  );
  // The tiny model's four questions are four modalities: each has its held-out accuracy, a fraction.
  for (const s of [other.s.heldout_accuracy_by_modality_after_sft, other.s.heldout_accuracy_by_modality_after_rl]) {
    t.same(Object.keys(s), ['CT_SCAN', 'MICROSCOPY', 'MRI_SCAN', 'X_RAY']);
    t.ok(
      Object.values(s).every((v) => v !== null && v >= 0 && v <= 1),
      'each a number in [0, 1]',
    );
  }
});

t.test('an sft.train_files without usable rows is refused, naming the file', async (t) => {
  writeFileSync(join(root, 'sft-empty.jsonl'), '{"problem": "no answer"}\n');
  await t.rejects(warmUp('empty', 'sft-empty.jsonl'), /sft-empty\.jsonl: no usable rows \(1 read, 1 bad/);
});
