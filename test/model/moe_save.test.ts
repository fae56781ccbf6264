// Mixture-of-experts checkpoints: saveModel writes the per-expert layout transformers expects for
// qwen3_moe (the fixture's own tensor names and shapes), reloading gives identical logits, the
// fused layouts (engine orientation, and the transposed one Qwen3-VL-MoE releases store) load to
// the same weights, an incomplete set of experts is refused, and a from-scratch MoE config round trips.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Model, packSequences, type Qwen3Config } from '../../src/engine/model.js';
import { loadModel, readHfConfig } from '../../src/model/load.js';
import { saveModel } from '../../src/model/save.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { bytesOf, writeSafetensors, type TensorSource } from '../../src/model/safetensors-writer.js';
import { sameBits } from '../helpers/numeric.js';

const fixture = join(import.meta.dirname, '../fixtures/hf/qwen3_moe_tiny');
const batch = packSequences([
  [5, 17, 99, 3, 25, 7, 42],
  [11, 12, 13, 14, 200, 1],
]);

function headers(file: string): Map<string, string> {
  const st = SafetensorsFile.open(file);
  const out = new Map([...st.tensors].map(([n, e]) => [n, e.shape.join(',')]));
  st.close();
  return out;
}

async function logitsOf(model: Model): Promise<Float32Array> {
  return (await model.forward(batch, { logits: true })).logits!;
}

function tmp(name: string): string {
  return join(mkdtempSync(join(tmpdir(), 'medix-moe-save-')), name);
}

t.test('save writes the per-expert layout of the checkpoint, reload gives identical logits', async (t) => {
  const src = await loadModel(fixture);
  const dir = tmp('out');
  saveModel(src, dir, { dtype: 'f32', config: JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8')) });
  t.same(
    headers(join(dir, 'model.safetensors')),
    headers(join(fixture, 'model.safetensors')),
    'same tensor names and shapes as transformers wrote',
  );
  const back = await loadModel(dir);
  t.ok(sameBits(await logitsOf(back), await logitsOf(src)), 'logits bit-identical after save and reload');
});

t.test('fused expert tensors load in either orientation', async (t) => {
  const src = await loadModel(fixture);
  const config = readFileSync(join(fixture, 'config.json'), 'utf8');
  for (const transposed of [false, true]) {
    const dir = tmp(transposed ? 'fused-t' : 'fused');
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.json'), config);
    const tensors: TensorSource[] = src.parameters().map((p) => {
      let data = src.getParameter(p.name);
      let shape = [...p.shape];
      if (transposed && p.name.includes('.mlp.experts.')) {
        // [E, a, b] -> [E, b, a], as Qwen3-VL-MoE checkpoints store gate_up_proj and down_proj.
        const [E, a, b] = p.shape;
        const out = new Float32Array(data.length);
        for (let e = 0; e < E; e++)
          for (let i = 0; i < a; i++)
            for (let j = 0; j < b; j++) out[e * a * b + j * a + i] = data[e * a * b + i * b + j];
        data = out;
        shape = [E, b, a];
      }
      return { name: p.name, dtype: 'F32', shape, bytes: () => bytesOf(data) };
    });
    writeSafetensors(join(dir, 'model.safetensors'), tensors, { format: 'pt' });
    const back = await loadModel(dir);
    for (const p of src.parameters())
      t.ok(
        sameBits(back.getParameter(p.name), src.getParameter(p.name)),
        `${transposed ? 'transposed' : 'engine'} orientation: ${p.name}`,
      );
  }
});

t.test('a missing expert is refused naming the parameter', async (t) => {
  const src = await loadModel(fixture);
  const dir = tmp('missing');
  saveModel(src, dir, { dtype: 'f32', config: JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8')) });
  const st = SafetensorsFile.open(join(dir, 'model.safetensors'));
  const keep: TensorSource[] = [...st.tensors]
    .filter(([n]) => n !== 'model.layers.2.mlp.experts.5.up_proj.weight')
    .map(([n, e]) => ({ name: n, dtype: 'F32', shape: e.shape, bytes: () => bytesOf(st.readFloat32(n)) }));
  writeSafetensors(join(dir, 'model2.safetensors'), keep, { format: 'pt' });
  st.close();
  const broken = tmp('broken');
  mkdirSync(broken);
  writeFileSync(join(broken, 'config.json'), readFileSync(join(dir, 'config.json')));
  writeFileSync(join(broken, 'model.safetensors'), readFileSync(join(dir, 'model2.safetensors')));
  await t.rejects(loadModel(broken), /experts of 'model\.layers\.2\.mlp\.experts\.gate_up_proj' are missing/);
});

t.test('a mixture-of-experts config written from scratch reads back the same', async (t) => {
  const config: Qwen3Config = {
    vocabSize: 256,
    hiddenSize: 16,
    intermediateSize: 24,
    numLayers: 3,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 8,
    ropeTheta: 10000,
    rmsEps: 1e-6,
    tieEmbeddings: false,
    numExperts: 4,
    numExpertsPerTok: 2,
    moeIntermediateSize: 8,
    decoderSparseStep: 1,
    mlpOnlyLayers: [0],
    normTopkProb: true,
    routerAuxLossCoef: 0.01,
  };
  const model = Model.create(config, { seed: 3 });
  const dir = tmp('scratch');
  saveModel(model, dir, { dtype: 'f32' });
  t.same(readHfConfig(dir).config, { ...config, prefix: 'model.' }, 'config.json describes the same architecture');
  const back = await loadModel(dir);
  t.ok(sameBits(await logitsOf(back), await logitsOf(model)), 'identical logits');
});

t.test('qwen3_vl_moe: experts are written fused and transposed, as its releases store them', async (t) => {
  const vl = join(import.meta.dirname, '../fixtures/hf/qwen3vl_moe_tiny');
  const src = await loadModel(vl);
  const dir = tmp('vl');
  saveModel(src, dir, { dtype: 'f32', config: JSON.parse(readFileSync(join(vl, 'config.json'), 'utf8')) });
  const h = headers(join(dir, 'model.safetensors'));
  t.equal(h.get('model.language_model.layers.0.mlp.experts.gate_up_proj'), '8,64,64', 'gate_up_proj [E, H, 2I]');
  t.equal(h.get('model.language_model.layers.0.mlp.experts.down_proj'), '8,32,64', 'down_proj [E, I, H]');
  const back = await loadModel(dir);
  for (const p of src.parameters()) t.ok(sameBits(back.getParameter(p.name), src.getParameter(p.name)), p.name);
});
