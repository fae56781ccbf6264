// Saving a Qwen3-VL model keeps the vision tower and the image processor settings: the saved directory
// holds every model.visual.* tensor and preprocessor_config.json, and reloading it gives the same
// logits on a batch with images, bit for bit (float32 files).
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

  const batch = referenceBatch(src);
  const before = await model.forward(batch, { logits: true });
  const after = await (await loadModel(dir)).forward(batch, { logits: true });
  t.ok(sameBits(after.logits!, before.logits!), 'same logits, bit for bit');
});
