// Training checkpoints restore weights and optimizer state exactly, keep the newest K, and a
// damaged or half-written checkpoint is skipped for the newest one that verifies.
import t from 'tap';
import { appendFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, packSequences, type Qwen3Config } from '../../src/engine/model.js';
import { AdamW } from '../../src/engine/optimizer.js';
import { sftLoss } from '../../src/rl/sft-loss.js';
import {
  latestValidCheckpoint,
  listCheckpoints,
  loadCheckpoint,
  saveCheckpoint,
  verifyCheckpoint,
} from '../../src/train/checkpoint.js';
import { tinyQwen3Config } from '../helpers/tiny-config.js';

const config: Qwen3Config = tinyQwen3Config;

async function trainedModel(): Promise<Model> {
  const model = Model.create(config, { seed: 11 });
  const batch = packSequences([[1, 2, 3, 4, 5]]);
  const mask = Float32Array.from(batch.targets, (x) => (x >= 0 ? 1 : 0));
  const opt = new AdamW(model, { lr: 1e-2 });
  for (let i = 0; i < 3; i++) {
    const { logp } = await model.forward(batch, { training: true });
    model.zeroGrad();
    await model.backward({ dlogp: sftLoss(logp, mask, batch.cuSeqlens, { agg: 'token-mean' }).dlogp });
    await opt.step();
  }
  return model;
}

t.test('a checkpoint restores weights, moments and trainer state exactly', async (t) => {
  const run = mkdtempSync(join(tmpdir(), 'medix-ckpt-'));
  const model = await trainedModel();
  const state = { step: 3, data: { epoch: 0, index: 12 }, rng: 'abc' };
  const dir = saveCheckpoint(run, model, state);
  t.match(dir, /step_000003$/);
  const back = await loadCheckpoint(dir);
  t.same(back.trainer, state);
  for (const p of model.parameters()) t.same(back.model.getParameter(p.name), model.getParameter(p.name), p.name);
  t.same(back.model.getOptimizerState(), model.getOptimizerState(), 'moments and step');
});

t.test('keeps the newest K; damaged or partial checkpoints are skipped', async (t) => {
  const run = mkdtempSync(join(tmpdir(), 'medix-ckpt-'));
  const model = await trainedModel();
  for (const step of [1, 2, 3, 4]) saveCheckpoint(run, model, { step }, { keep: 2 });
  t.same(
    listCheckpoints(run).map((c) => c.step),
    [4, 3],
    'only the newest two remain',
  );
  t.same(
    readdirSync(join(run, 'checkpoints')).filter((n) => n.startsWith('.')),
    [],
    'no temporary directories left',
  );

  appendFileSync(join(run, 'checkpoints', 'step_000004', 'optimizer.safetensors'), 'x');
  t.throws(() => verifyCheckpoint(join(run, 'checkpoints', 'step_000004')), { name: 'CheckpointCorruptError' });
  const warnings: string[] = [];
  t.equal(latestValidCheckpoint(run, (m) => warnings.push(m))!.trainer.step, 3, 'falls back to step 3');
  t.match(warnings[0], /step_000004.*checksum mismatch/);

  // A save killed before its rename leaves only a partial directory, which is never considered.
  mkdirSync(join(run, 'checkpoints', '.step_000005.partial-999'));
  // A directory with the final name but no state file (copied by hand, say) fails verification.
  mkdirSync(join(run, 'checkpoints', 'step_000006'));
  writeFileSync(join(run, 'checkpoints', 'step_000006', 'junk'), '');
  t.equal(latestValidCheckpoint(run, () => {})!.trainer.step, 3);
  t.equal(latestValidCheckpoint(mkdtempSync(join(tmpdir(), 'medix-empty-'))), null, 'no checkpoints: null');
});
