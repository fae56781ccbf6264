// loadModel reads what Hugging Face directories hold (F16/F64 as well as F32/BF16, tied heads, the
// text part of Qwen3-VL) and refuses what it cannot load with a CheckpointError or ConfigError
// naming the file and the field, before any wrong weight reaches the engine.
import t, { type Test } from 'tap';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model, type Qwen3Config } from '../../src/engine/model.js';
import { CheckpointError, loadModel } from '../../src/model/load.js';
import { ConfigError } from '../../src/model/hf-config.js';
import { saveModel } from '../../src/model/save.js';
import { SafetensorsError, SafetensorsFile } from '../../src/model/safetensors.js';
import { bytesOf, writeSafetensors, type TensorSource } from '../../src/model/safetensors-writer.js';

const config: Qwen3Config = {
  vocabSize: 32,
  hiddenSize: 8,
  intermediateSize: 12,
  numLayers: 1,
  numHeads: 2,
  numKvHeads: 1,
  headDim: 4,
  ropeTheta: 10000,
  rmsEps: 1e-6,
  tieEmbeddings: false,
};
const root = mkdtempSync(join(tmpdir(), 'medix-ckpt-'));
const source = Model.create(config, { seed: 11 });
const sharded = join(root, 'sharded');
saveModel(source, sharded, { dtype: 'f32', maxShardBytes: 1024 });
const single = join(root, 'single');
saveModel(source, single, { dtype: 'f32' });

/** A fresh copy of a saved directory to damage. */
let copies = 0;
function copyOf(dir: string): string {
  const out = join(root, `case-${copies++}`);
  cpSync(dir, out, { recursive: true });
  return out;
}
const readJson = (f: string) => JSON.parse(readFileSync(f, 'utf8'));
const writeJson = (f: string, v: unknown) => writeFileSync(f, JSON.stringify(v));

/** Rewrites a directory's single model.safetensors with the tensors edit() returns. */
function rewriteSingle(dir: string, edit: (tensors: TensorSource[]) => TensorSource[]): void {
  const file = join(dir, 'model.safetensors');
  const st = SafetensorsFile.open(file);
  const tensors: TensorSource[] = [...st.tensors.values()].map((e) => {
    const bytes = st.readBytes(e.name);
    return { name: e.name, dtype: e.dtype, shape: e.shape, bytes: () => bytes };
  });
  st.close();
  rmSync(file);
  writeSafetensors(file, edit(tensors));
}

async function refuses(
  t: Test,
  dir: string,
  cls: abstract new (...args: never[]) => unknown,
  pattern: RegExp,
  what: string,
) {
  const err = await loadModel(dir).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof cls, `${what}: ${cls.name}`);
  t.match((err as Error)?.message, pattern, what);
}

t.test('F16 and F64 tensors convert to the engine float32', async (t) => {
  const dir = copyOf(single);
  const name = 'model.norm.weight';
  // Values exact in half precision, including a subnormal, a negative and a large one.
  const values = [1, -2.5, 0.0009765625, 2 ** -24, 65504, 0.333251953125, -0, 3];
  const half = new Uint16Array([0x3c00, 0xc100, 0x1400, 0x0001, 0x7bff, 0x3555, 0x8000, 0x4200]);
  rewriteSingle(dir, (ts) => ts.map((x) => (x.name === name ? { ...x, dtype: 'F16', bytes: () => bytesOf(half) } : x)));
  t.same(Array.from((await loadModel(dir)).getParameter(name)), values, 'F16');
  rewriteSingle(dir, (ts) =>
    ts.map((x) => (x.name === name ? { ...x, dtype: 'F64', bytes: () => bytesOf(new Float64Array(values)) } : x)),
  );
  t.same(Array.from((await loadModel(dir)).getParameter(name)), values, 'F64');
});

t.test('a tied checkpoint that still stores lm_head.weight loads with the embedding as head', async (t) => {
  const tied = Model.create({ ...config, tieEmbeddings: true }, { seed: 3 });
  const dir = join(root, 'tied');
  saveModel(tied, dir, { dtype: 'f32' });
  const embed = tied.getParameter('model.embed_tokens.weight');
  rewriteSingle(dir, (ts) => [
    ...ts,
    { name: 'lm_head.weight', dtype: 'F32', shape: [32, 8], bytes: () => bytesOf(new Float32Array(256).fill(7)) },
  ]);
  const back = await loadModel(dir);
  t.same(back.getParameter('model.embed_tokens.weight'), embed);
  t.notOk(
    back.parameters().some((p) => p.name === 'lm_head.weight'),
    'no separate head',
  );
});

t.test('Qwen3-VL: the text model and the vision tower load, every tensor of the checkpoint used', async (t) => {
  const dir = join(import.meta.dirname, '../fixtures/hf/qwen3vl_text_tiny');
  const model = await loadModel(dir);
  const st = SafetensorsFile.open(join(dir, 'model.safetensors'));
  t.same(
    model
      .parameters()
      .map((p) => p.name)
      .sort(),
    [...st.tensors.keys()].sort(),
    'same tensors',
  );
  const name = 'model.visual.blocks.0.attn.qkv.weight';
  t.same(model.getParameter(name), st.readFloat32(name), `${name} loaded`);
  st.close();
});

t.test('config.json faults name the field', async (t) => {
  const cases: [string, (c: Record<string, unknown>) => void, RegExp][] = [
    ['unknown model_type', (c) => (c.model_type = 'llama'), /model_type "llama" is not supported/],
    [
      'MoE without experts',
      (c) => {
        c.model_type = 'qwen3_moe';
        delete c.architectures;
      },
      /num_experts must be an integer >= 1, got undefined/,
    ],
    [
      'another head',
      (c) => (c.architectures = ['Qwen3ForSequenceClassification']),
      /architectures = \["Qwen3ForSequenceClassification"\] is not supported .*expected \["Qwen3ForCausalLM"\]/,
    ],
    ['missing size', (c) => delete c.hidden_size, /hidden_size must be a positive integer/],
    ['rope scaling', (c) => (c.rope_scaling = { rope_type: 'yarn', factor: 4 }), /rope type "yarn" is not supported/],
  ];
  for (const [what, edit, pattern] of cases) {
    const dir = copyOf(single);
    const c = readJson(join(dir, 'config.json'));
    edit(c);
    writeJson(join(dir, 'config.json'), c);
    await refuses(t, dir, ConfigError, new RegExp(`config\\.json: .*${pattern.source}`), what);
  }
  const dir = copyOf(single);
  writeFileSync(join(dir, 'config.json'), '{"model_type": ');
  await refuses(t, dir, CheckpointError, /config\.json: cannot read model config/, 'config not JSON');
});

t.test('tensor faults name the file and the tensor', async (t) => {
  const cases: [string, (ts: TensorSource[]) => TensorSource[], RegExp, abstract new (...args: never[]) => unknown][] =
    [
      [
        'missing tensor',
        (ts) => ts.filter((x) => x.name !== 'model.layers.0.mlp.up_proj.weight'),
        /missing 1 tensor\(s\), e\.g\. 'model\.layers\.0\.mlp\.up_proj\.weight'/,
        CheckpointError,
      ],
      [
        'extra tensor',
        (ts) => [
          ...ts,
          {
            name: 'model.layers.1.input_layernorm.weight',
            dtype: 'F32',
            shape: [8],
            bytes: () => bytesOf(new Float32Array(8)),
          },
        ],
        /model\.safetensors: unexpected tensor 'model\.layers\.1\.input_layernorm\.weight'/,
        CheckpointError,
      ],
      [
        'shape mismatch',
        (ts) => ts.map((x) => (x.name === 'model.norm.weight' ? { ...x, shape: [2, 4] } : x)),
        /model\.safetensors: tensor 'model\.norm\.weight' has shape \[2,4\], the config implies \[8\]/,
        CheckpointError,
      ],
      [
        'integer weights',
        (ts) => ts.map((x) => (x.name === 'model.norm.weight' ? { ...x, dtype: 'I32' } : x)),
        /model\.safetensors: tensor 'model\.norm\.weight' has dtype I32, expected a float type/,
        CheckpointError,
      ],
      [
        'non-finite weights',
        (ts) =>
          ts.map((x) =>
            x.name === 'model.norm.weight' ? { ...x, bytes: () => bytesOf(new Float32Array(8).fill(NaN)) } : x,
          ),
        /model\.safetensors: tensor 'model\.norm\.weight': .*non-finite/,
        CheckpointError,
      ],
    ];
  for (const [what, edit, pattern, cls] of cases) {
    const dir = copyOf(single);
    rewriteSingle(dir, edit);
    await refuses(t, dir, cls, pattern, what);
  }
  const dir = copyOf(single);
  writeFileSync(join(dir, 'model.safetensors'), readFileSync(join(dir, 'model.safetensors')).subarray(0, 100));
  await refuses(t, dir, SafetensorsError, /model\.safetensors: not a valid safetensors file/, 'truncated file');
  rmSync(join(dir, 'model.safetensors'));
  await refuses(t, dir, CheckpointError, /no model\.safetensors or model\.safetensors\.index\.json/, 'no weights');
});

t.test('sharded: the index and the shards must agree', async (t) => {
  const indexOf = (dir: string) => join(dir, 'model.safetensors.index.json');
  const base = readJson(indexOf(sharded));
  const shardNames = [...new Set(Object.values(base.weight_map) as string[])];
  t.ok(shardNames.length >= 3, `${shardNames.length} shards`);
  const back = await loadModel(sharded);
  for (const p of source.parameters())
    t.same(back.getParameter(p.name), source.getParameter(p.name), `${p.name} read from its shard`);

  let dir = copyOf(sharded);
  rmSync(join(dir, shardNames[1]));
  await refuses(
    t,
    dir,
    CheckpointError,
    new RegExp(`index\\.json: shard ${shardNames[1]} is missing`),
    'missing shard',
  );

  const edits: [string, (w: Record<string, unknown>) => void, RegExp][] = [
    [
      'path outside the directory',
      (w) => (w['model.norm.weight'] = '../single/model.safetensors'),
      /weight_map\['model\.norm\.weight'\] = "\.\.\/single\/model\.safetensors" is not a \.safetensors file name in this directory/,
    ],
    [
      'tensor placed in the wrong shard',
      (w) => (w['model.norm.weight'] = shardNames[0]),
      /holds tensor 'model\.norm\.weight', which model\.safetensors\.index\.json places in/,
    ],
    [
      'tensor not listed',
      (w) => delete w['model.norm.weight'],
      /holds tensor 'model\.norm\.weight', which model\.safetensors\.index\.json does not list/,
    ],
    [
      'listed tensor absent',
      (w) => (w['model.layers.7.mlp.up_proj.weight'] = shardNames[0]),
      new RegExp(`lists 'model\\.layers\\.7\\.mlp\\.up_proj\\.weight' in ${shardNames[0]}, which does not hold it`),
    ],
  ];
  for (const [what, edit, pattern] of edits) {
    dir = copyOf(sharded);
    const index = readJson(indexOf(dir));
    edit(index.weight_map);
    writeJson(indexOf(dir), index);
    await refuses(t, dir, CheckpointError, pattern, what);
  }
  dir = copyOf(sharded);
  writeJson(indexOf(dir), { metadata: {} });
  await refuses(t, dir, CheckpointError, /index\.json: weight_map must be an object/, 'no weight_map');
});
