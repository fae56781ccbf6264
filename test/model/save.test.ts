// saveModel writes what loadModel (and transformers) read: f32 round trips exactly, bf16 rounds to
// nearest even, shards are indexed, the directory appears whole or not at all.
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, type Qwen3Config } from '../../src/engine/model.js';
import { loadModel, readHfConfig } from '../../src/model/load.js';
import { saveModel } from '../../src/model/save.js';
import { f32ToBf16 } from '../../src/model/safetensors-writer.js';

const config: Qwen3Config = {
  vocabSize: 48,
  hiddenSize: 16,
  intermediateSize: 24,
  numLayers: 2,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 8,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: false,
};
const fixture = join(import.meta.dirname, '../fixtures/hf/qwen3_tiny');

t.test('bf16 conversion rounds to nearest, ties to even', async (t) => {
  const x = new Float32Array([
    1,
    1 + 2 ** -8,
    1 + 3 * 2 ** -8,
    1 + 2 ** -8 + 2 ** -12,
    -2.5,
    Infinity,
    NaN,
    3.4028234663852886e38,
  ]);
  const back = new Float32Array(new Uint32Array(Array.from(f32ToBf16(x), (h) => h << 16)).buffer);
  t.same(Array.from(back.slice(0, 6)), [1, 1, 1 + 4 * 2 ** -8, 1 + 2 * 2 ** -8, -2.5, Infinity]);
  t.ok(Number.isNaN(back[6]), 'NaN stays NaN');
  t.equal(back[7], Infinity, 'the largest float32 rounds up to infinity, as torch does');
});

t.test('f32 round trip is exact, across several shards', async (t) => {
  const model = Model.create(config, { seed: 4 });
  const dir = join(mkdtempSync(join(tmpdir(), 'medix-save-')), 'out');
  saveModel(model, dir, { dtype: 'f32', maxShardBytes: 8 * 1024 });
  const files = readdirSync(dir);
  const shards = files.filter((f) => f.endsWith('.safetensors'));
  t.ok(shards.length >= 3, `${shards.length} shards`);
  const index = JSON.parse(readFileSync(join(dir, 'model.safetensors.index.json'), 'utf8'));
  t.same(
    Object.keys(index.weight_map).sort(),
    model
      .parameters()
      .map((p) => p.name)
      .sort(),
    'every tensor indexed',
  );
  t.equal(index.metadata.total_size, model.numParameters * 4);
  t.same(readHfConfig(dir).config, { ...config, prefix: 'model.' }, 'config.json describes the same architecture');
  t.notOk(
    files.some((f) => f.startsWith('.')),
    'no temporary files left',
  );
  t.ok(files.includes('generation_config.json'), 'generation config written');
  const back = await loadModel(dir);
  for (const p of model.parameters()) t.same(back.getParameter(p.name), model.getParameter(p.name), p.name);
  t.throws(() => saveModel(model, dir), /already exists/);
});

t.test('bf16 save of a transformers checkpoint keeps its config and its logits', async (t) => {
  const src = await loadModel(fixture);
  const dir = join(mkdtempSync(join(tmpdir(), 'medix-save-')), 'bf16');
  const srcConfig = { ...JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8')), eos_token_id: 7 };
  saveModel(src, dir, { config: srcConfig, tokenizerDir: fixture });
  t.same(
    JSON.parse(readFileSync(join(dir, 'generation_config.json'), 'utf8')),
    { _from_model_config: true, eos_token_id: 7 },
    'generation config from the special token ids',
  );
  const written = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  t.equal(written.torch_dtype, 'bfloat16');
  t.same(
    { ...written, torch_dtype: undefined, dtype: undefined },
    { ...srcConfig, torch_dtype: undefined, dtype: undefined },
    'other fields kept',
  );
  t.ok(existsSync(join(dir, 'model.safetensors')), 'one file when it fits one shard');
  const back = await loadModel(dir);
  for (const p of src.parameters()) {
    const expect = new Float32Array(
      new Uint32Array(Array.from(f32ToBf16(src.getParameter(p.name)), (h) => h << 16)).buffer,
    );
    t.same(back.getParameter(p.name), expect, `${p.name} is the bf16 rounding`);
  }
});

t.test('overwrite replaces the directory as a whole', async (t) => {
  const dir = join(mkdtempSync(join(tmpdir(), 'medix-save-')), 'm');
  saveModel(Model.create(config, { seed: 1 }), dir, { dtype: 'f32', maxShardBytes: 4096 });
  const second = Model.create(config, { seed: 2 });
  saveModel(second, dir, { dtype: 'f32', overwrite: true });
  t.notOk(existsSync(join(dir, 'model.safetensors.index.json')), 'no stale index from the old sharded save');
  const back = await loadModel(dir);
  t.same(back.getParameter('model.norm.weight'), second.getParameter('model.norm.weight'));
});
