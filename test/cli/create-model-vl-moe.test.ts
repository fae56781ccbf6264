// `medix create-model --preset tiny-vl-moe`: a random Qwen3-VL-MoE directory laid out as transformers
// expects (config keys and tensor names of the checkpoint transformers itself saved,
// test/fixtures/hf/qwen3vl_moe_tiny), that medix loads and runs on an image with routing, and that
// saves from scratch (config.json written by medix) and reloads to the same weights and logits, bit for bit.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { loadModel, readHfConfig } from '../../src/model/load.js';
import { MODEL_PRESETS } from '../../src/model/presets.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { saveModel } from '../../src/model/save.js';
import { imageBatch } from '../helpers/image-batch.js';
import { sameBits } from '../helpers/numeric.js';
import { medix } from './run-medix.js';

const fixture = path.join(import.meta.dirname, '..', 'fixtures', 'hf', 'qwen3vl_moe_tiny');
const json = (file: string) => JSON.parse(readFileSync(file, 'utf8'));

/** Tensor names with layer and block numbers as '#', and their shapes. */
function tensorShapes(dir: string): Map<string, number[]> {
  const st = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
  const shapes = new Map([...st.tensors].map(([name, info]) => [name, info.shape]));
  st.close();
  return shapes;
}
const templates = (names: Iterable<string>) => new Set([...names].map((n) => n.replace(/\.\d+\./g, '.#.')));

t.test('tiny-vl-moe: a Qwen3-VL-MoE directory that loads, runs on an image and saves bit-exactly', async (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'medix-tiny-vl-moe-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const dir = path.join(out, 'model');
  const r = medix('create-model', '--preset', 'tiny-vl-moe', '--out', dir);
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /8 experts top-2/);

  const { config, modelType } = readHfConfig(dir);
  t.equal(modelType, 'qwen3_vl_moe');
  const preset = MODEL_PRESETS['tiny-vl-moe'];
  t.same(
    [config.numExperts, config.numExpertsPerTok, config.moeIntermediateSize, config.normTopkProb],
    [preset.numExperts, preset.numExpertsPerTok, preset.moeIntermediateSize, true],
    'experts read back',
  );
  t.same(config.vision, { ...preset.vision, ropeTheta: 10000 }, 'vision config reads back');

  const mine = json(path.join(dir, 'config.json'));
  const theirs = json(path.join(fixture, 'config.json'));
  t.same(
    [mine.architectures, mine.model_type, mine.text_config.model_type, mine.vision_config.model_type],
    [theirs.architectures, theirs.model_type, theirs.text_config.model_type, theirs.vision_config.model_type],
  );
  // Not written: what transformers fills in with its defaults (null token ids, no sliding window, the
  // vision tower's axial rope_parameters) and its version stamp.
  const notWritten = [
    'bos_token_id',
    'eos_token_id',
    'pad_token_id',
    'sliding_window',
    'transformers_version',
    'rope_parameters',
  ];
  for (const [label, a, b] of [
    ['', mine, theirs],
    ['text_config.', mine.text_config, theirs.text_config],
    ['vision_config.', mine.vision_config, theirs.vision_config],
  ] as const) {
    const missing = Object.keys(b).filter((k) => !(k in a) && !notWritten.includes(k));
    t.same(missing, [], `${label}: every key transformers writes is there`);
  }
  t.ok(mine.text_config.rope_parameters?.mrope_section, 'text_config.rope_parameters with mrope_section');

  t.equal(
    mine.text_config.tie_word_embeddings,
    true,
    'text_config says the embeddings are tied (transformers reads it)',
  );

  // Same tensor names as transformers' own save, but the dense MLP of the fixture's mlp_only layer and
  // lm_head (the fixture's is untied; the preset ties it to the embedding).
  const shapes = tensorShapes(dir);
  const want = [...templates(tensorShapes(fixture).keys())].filter(
    (n) => !/\.mlp\.(gate|up|down)_proj\.weight$/.test(n) && n !== 'lm_head.weight',
  );
  t.same([...templates(shapes.keys())].sort(), want.sort(), 'tensor names as transformers saves them');
  const { hiddenSize: H, moeIntermediateSize: I } = preset;
  // Experts fused as Qwen3-VL-MoE releases store them, which transformers 5 transposes on load.
  t.same(shapes.get('model.language_model.layers.0.mlp.experts.gate_up_proj'), [8, H, 2 * I]);
  t.same(shapes.get('model.language_model.layers.0.mlp.experts.down_proj'), [8, I, H]);

  const model = await loadModel(dir);
  const batch = await imageBatch(dir);
  const last = batch.tokens.length - 2;
  const res = await model.forward(batch, { logits: true });
  t.ok(Number.isFinite(res.logp[last]) && res.logp[last] < 0, 'a finite log-prob with an image');
  const load = model.routing().expertLoad;
  t.equal(
    load.reduce((a, b) => a + b, 0),
    2 * 2 * batch.tokens.length,
    'every token routed to 2 experts in 2 layers',
  );

  const again = path.join(out, 'saved');
  saveModel(model, again);
  t.same(readHfConfig(again).config, config, 'config.json written from scratch reads back the same');
  const back = await loadModel(again);
  for (const p of model.parameters()) t.ok(sameBits(back.getParameter(p.name), model.getParameter(p.name)), p.name);
  t.ok(sameBits((await back.forward(batch, { logits: true })).logits!, res.logits!), 'same logits, bit for bit');
});
