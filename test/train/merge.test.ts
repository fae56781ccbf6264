// `medix merge` turns a training checkpoint into a Hugging Face directory that loads back with
// the bf16 rounding of the trained weights, and refuses a damaged checkpoint and an OUT whose replacing would
// delete the checkpoint being merged or files that are not a model.
import t from 'tap';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { Model, type Qwen3Config } from '../../src/engine/model.js';
import { loadModel } from '../../src/model/load.js';
import { f32ToBf16 } from '../../src/model/safetensors-writer.js';
import { saveCheckpoint } from '../../src/train/checkpoint.js';

const config: Qwen3Config = {
  vocabSize: 32,
  hiddenSize: 16,
  intermediateSize: 16,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 8,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: false,
};
const cli = join(import.meta.dirname, '../../src/cli/medix.ts');
const medix = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', cli, ...args], { encoding: 'utf8' });

t.test('merge a run directory into a Hugging Face model directory', async (t) => {
  const run = mkdtempSync(join(tmpdir(), 'medix-merge-'));
  const model = Model.create(config, { seed: 21 });
  saveCheckpoint(run, model, { step: 7 }, { generationConfig: { eos_token_id: [3] } });
  const out = join(run, 'hf');
  const r = medix('merge', run, out, '--max-shard-gb', '0.000002');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /step 7/);
  t.ok(existsSync(join(out, 'model.safetensors.index.json')), 'sharded with an index');
  t.same(JSON.parse(readFileSync(join(out, 'generation_config.json'), 'utf8')), { eos_token_id: [3] });
  t.equal(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).torch_dtype, 'bfloat16');
  const back = await loadModel(out);
  for (const p of model.parameters()) {
    const expect = new Float32Array(
      new Uint32Array(Array.from(f32ToBf16(model.getParameter(p.name)), (h) => h << 16)).buffer,
    );
    t.same(back.getParameter(p.name), expect, p.name);
  }
  const again = medix('merge', run, out);
  t.not(again.status, 0);
  t.match(again.stderr, /already exists \(pass --overwrite to replace the model in it\)/);
  t.equal(medix('merge', run, out, '--overwrite').status, 0, '--overwrite replaces a model directory');
});

t.test('--overwrite never deletes the checkpoint being merged, nor a folder that is not a model', async (t) => {
  const run = mkdtempSync(join(tmpdir(), 'medix-merge-'));
  const older = saveCheckpoint(run, Model.create(config, { seed: 3 }), { step: 2 });
  const ckpt = saveCheckpoint(run, Model.create(config, { seed: 2 }), { step: 3 });
  const files = () => readdirSync(run, { recursive: true }).length;
  const before = files();
  // An older checkpoint's model/ has a config.json: it is guarded as the run's checkpoints, not as a model.
  for (const out of [run, join(run, 'checkpoints'), ckpt, join(ckpt, 'model'), join(older, 'model')]) {
    const r = medix('merge', run, out, '--overwrite');
    t.not(r.status, 0, `OUT ${out}: refused`);
    t.match(r.stderr, /holds or is inside the checkpoints being merged/);
  }
  t.equal(files(), before, 'the run is untouched');
  const notes = mkdtempSync(join(tmpdir(), 'medix-notes-'));
  writeFileSync(join(notes, 'notes.txt'), 'mine');
  const r = medix('merge', run, notes, '--overwrite');
  t.not(r.status, 0);
  t.match(r.stderr, /not a model directory \(no config\.json\)/);
  t.equal(readFileSync(join(notes, 'notes.txt'), 'utf8'), 'mine', "the folder's files are kept");
});

t.test('a damaged checkpoint is refused', async (t) => {
  const run = mkdtempSync(join(tmpdir(), 'medix-merge-'));
  const dir = saveCheckpoint(run, Model.create(config, { seed: 1 }), { step: 1 });
  appendFileSync(join(dir, 'model', 'model.safetensors'), 'garbage');
  const r = medix('merge', dir, join(run, 'out'));
  t.not(r.status, 0);
  t.match(r.stderr, /checksum mismatch/);
});

t.test('a Qwen3-VL checkpoint merges with its vision tower and preprocessor_config.json', async (t) => {
  const src = join(import.meta.dirname, '../fixtures/hf/qwen3vl_tiny');
  const run = mkdtempSync(join(tmpdir(), 'medix-merge-vl-'));
  const model = await loadModel(src);
  const modelConfig = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  saveCheckpoint(run, model, { step: 3 }, { modelConfig, tokenizerDir: src });
  const out = join(run, 'hf');
  const r = medix('merge', run, out, '--dtype', 'f32');
  t.equal(r.status, 0, r.stderr);
  t.equal(
    readFileSync(join(out, 'preprocessor_config.json'), 'utf8'),
    readFileSync(join(src, 'preprocessor_config.json'), 'utf8'),
  );
  const back = await loadModel(out);
  const visual = model.parameters().filter((p) => p.name.startsWith('model.visual.'));
  t.ok(visual.length > 0, 'the model has a vision tower');
  for (const p of visual) t.same(back.getParameter(p.name), model.getParameter(p.name), p.name);
});
