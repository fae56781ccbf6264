// `medix train CONFIG --check`: the quickstart with a judge and an embedding model is checked (model, data, one
// probe through the embedding model and one through the judge, past its cache) and nothing is written: no run
// directory, no cache entry. A judge that does not answer makes the check fail, naming it; a missing embedding
// model is named by its file.
import t from 'tap';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { judgeServer } from '../helpers/judge-server.js';
import { writeTinyEncoder } from '../helpers/tiny-encoder.js';
import { Model } from '../../src/engine/model.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';
import { tinyQwen3Config } from '../helpers/tiny-config.js';
import { medixAsync as medix } from './run-medix.js';

const quickstart = join(import.meta.dirname, '../../examples/quickstart.yaml');
const dir = mkdtempSync(join(tmpdir(), 'medix-train-check-'));
writeTinyEncoder(dir);

const run = join(dir, 'run');
const cache = join(dir, 'judge-cache.jsonl');
const check = (judgeUrl: string, embedding = join(dir, 'model.onnx')) =>
  medix([
    'train',
    quickstart,
    '--check',
    `trainer.save_checkpoint_path=${run}`,
    `worker.reward.judge.base_url=${judgeUrl}`,
    'worker.reward.judge.model=tiny-judge',
    'worker.reward.judge.max_attempts=1',
    `worker.reward.judge.cache_file=${cache}`,
    `worker.reward.embedding.model=${embedding}`,
    `worker.reward.embedding.tokenizer=${join(dir, 'tokenizer.json')}`,
    'worker.reward.embedding.pooling=mean',
  ]);

t.test('a run is checked end to end and nothing is written', async (t) => {
  const judge = await judgeServer(0);
  t.teardown(judge.close);
  for (const pass of [1, 2]) {
    const r = await check(judge.url);
    t.equal(r.status, 0, r.stderr);
    t.match(
      r.stdout,
      /--check: data: 104 training rows \(13 steps of 8 prompts an epoch; 24 steps\), 20 held-out rows/,
    );
    t.match(r.stdout, /--check: reward: embedding model answered \(probe similarity -?\d\.\d{3}\)/);
    t.match(r.stdout, /--check: reward: judge tiny-judge at http:\S+ answered \(probe verdict YES\)/);
    t.match(r.stdout, /--check: run: \S+run \(a fresh start\)/);
    t.equal(judge.requests, pass, 'each check asks the judge itself once (the cache is passed by)');
  }
  t.notOk(existsSync(run), 'no run directory');
  t.notOk(existsSync(cache), 'no judge cache entry');
});

t.test('a judge that does not answer fails the check; a missing embedding model is named', async (t) => {
  const judge = await judgeServer(0);
  judge.fail = true;
  t.teardown(judge.close);
  const down = await check(judge.url);
  t.equal(down.status, 1);
  t.match(down.stdout, /--check: reward: judge tiny-judge at http:\S+ did not answer: .*503/);
  const missing = await check(judge.url, join(dir, 'absent.onnx'));
  t.not(missing.status, 0);
  t.match(missing.stderr, /absent\.onnx/);
  t.notOk(existsSync(run), 'no run directory');
});

t.test('a resume after the warm-up is checked as the run does it: sft.train_files is not read again', async (t) => {
  const resumed = join(dir, 'resumed');
  saveCheckpoint(resumed, Model.create(tinyQwen3Config, { seed: 1 }), { step: 1, sftDone: true });
  const r = await medix([
    'train',
    quickstart,
    '--check',
    '--resume',
    `trainer.save_checkpoint_path=${resumed}`,
    `sft.train_files=${join(dir, 'moved-away.jsonl')}`,
  ]);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /--check: sft: the warm-up was done before the checkpoint/);
  t.match(r.stdout, /--check: resume: from \S+step_000001 \(step 1\)/);
});
