// Saving a Qwen3-VL model keeps the vision tower and the image processor settings: the saved directory
// holds every model.visual.* tensor and preprocessor_config.json, every tensor under the name and shape
// transformers wrote for the same model, and reloading it gives the same logits on a batch with images,
// bit for bit (float32 files).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { loadModel } from '../../src/model/load.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';
import { saveModel } from '../../src/model/save.js';
import { referenceBatch } from '../helpers/image-batch.js';
import { sameBits } from '../helpers/numeric.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const src = path.join(here, '..', 'fixtures', 'hf', 'qwen3vl_tiny');

/** A safetensors file's tensors as "name shape", sorted. */
function layout(file: string): string[] {
  const f = SafetensorsFile.open(file);
  const l = [...f.tensors.entries()].map(([name, info]) => `${name} ${info.shape.join('x')}`).sort();
  f.close();
  return l;
}

t.test('save then reload: vision weights, preprocessor_config.json and logits with images survive', async (t) => {
  const out = mkdtempSync(path.join(tmpdir(), 'medix-vl-save-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const dir = path.join(out, 'model');
  const model = await loadModel(src);
  const config = JSON.parse(readFileSync(path.join(src, 'config.json'), 'utf8'));
  saveModel(model, dir, { dtype: 'f32', config, tokenizerDir: src });
  t.equal(
    readFileSync(path.join(dir, 'preprocessor_config.json'), 'utf8'),
    readFileSync(path.join(src, 'preprocessor_config.json'), 'utf8'),
    'preprocessor_config.json copied',
  );
  const st = SafetensorsFile.open(path.join(dir, 'model.safetensors'));
  const visual = [...st.tensors.keys()].filter((k) => k.startsWith('model.visual.'));
  t.equal(
    visual.length,
    model.parameters().filter((p) => p.name.startsWith('model.visual.')).length,
    'every vision tensor written',
  );
  st.close();
  // The names and shapes transformers wrote for this model, no more and no fewer: what its loader
  // matches one to one (a missing or unexpected key would be reported there, a shape refused).
  t.same(
    layout(path.join(dir, 'model.safetensors')),
    layout(path.join(src, 'model.safetensors')),
    "every tensor under transformers' name and shape",
  );

  const batch = referenceBatch(src);
  const before = await model.forward(batch, { logits: true });
  const after = await (await loadModel(dir)).forward(batch, { logits: true });
  t.ok(sameBits(after.logits!, before.logits!), 'same logits, bit for bit');
});

t.test(
  "Qwen3-VL-MoE: written in the release layout, each fused expert tensor transposed from transformers' own",
  async (t) => {
    // transformers 5.17 saved this fixture's fused experts as it holds them (gate_up_proj [E, 2I, H], down_proj
    // [E, H, I]); Qwen3-VL-MoE releases store them transposed, which transformers' conversion mapping
    // transposes on load, and medix writes that (src/model/moe-layout.ts). Every other tensor: the same name,
    // shape and values.
    const moe = path.join(here, '..', 'fixtures', 'hf', 'qwen3vl_moe_tiny');
    const out = mkdtempSync(path.join(tmpdir(), 'medix-vl-moe-save-'));
    t.teardown(() => rmSync(out, { recursive: true, force: true }));
    const config = JSON.parse(readFileSync(path.join(moe, 'config.json'), 'utf8'));
    saveModel(await loadModel(moe), path.join(out, 'model'), { dtype: 'f32', config, tokenizerDir: moe });
    const ours = SafetensorsFile.open(path.join(out, 'model', 'model.safetensors'));
    const theirs = SafetensorsFile.open(path.join(moe, 'model.safetensors'));
    t.same([...ours.tensors.keys()].sort(), [...theirs.tensors.keys()].sort(), "transformers' names");
    let fused = 0;
    const differ: string[] = [];
    for (const [name, info] of theirs.tensors) {
      const want = theirs.readFloat32(name);
      const got = ours.readFloat32(name);
      if (/\.mlp\.experts\.(gate_up|down)_proj$/.test(name)) {
        fused++;
        const [E, a, b] = info.shape;
        const transposed = new Float32Array(want.length);
        for (let e = 0; e < E; e++)
          for (let r = 0; r < a; r++)
            for (let c = 0; c < b; c++) transposed[e * a * b + c * a + r] = want[e * a * b + r * b + c];
        if (ours.tensors.get(name)!.shape.join() !== [E, b, a].join() || !sameBits(got, transposed)) differ.push(name);
      } else if (ours.tensors.get(name)!.shape.join() !== info.shape.join() || !sameBits(got, want)) differ.push(name);
    }
    t.ok(fused >= 4, `${fused} fused expert tensors`);
    t.same(differ, [], 'every tensor as described');
    ours.close();
    theirs.close();
  },
);
