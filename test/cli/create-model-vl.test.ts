// `medix create-model --preset tiny-vl` (and small-vl): a random Qwen3-VL directory that loads with its vision tower,
// whose config.json reads back to the preset's shape, with preprocessor_config.json, and that runs a
// forward pass on an image (test/fixtures/hf/images/a.png) placed in a prompt with multimodal positions.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { loadModel, readHfConfig } from '../../src/model/load.js';
import { MODEL_PRESETS } from '../../src/model/presets.js';
import { imageBatch } from '../helpers/image-batch.js';
import { medix } from './run-medix.js';

for (const name of ['tiny-vl', 'small-vl'] as const)
  t.test(`${name}: a Qwen3-VL directory that loads and runs on an image`, async (t) => {
    const out = mkdtempSync(path.join(tmpdir(), `medix-${name}-`));
    t.teardown(() => rmSync(out, { recursive: true, force: true }));
    const dir = path.join(out, 'model');
    const r = medix('create-model', '--preset', name, '--out', dir);
    t.equal(r.status, 0, r.stderr);
    const { config, modelType } = readHfConfig(dir);
    t.equal(modelType, 'qwen3_vl');
    const preset = MODEL_PRESETS[name];
    t.same(config.vision, { ...preset.vision, ropeTheta: 10000 }, 'vision config reads back');
    t.same(
      [config.mropeSection, config.imageTokenId, config.hiddenSize],
      [preset.mropeSection, preset.imageTokenId, preset.hiddenSize],
    );
    const model = await loadModel(dir);
    t.ok(
      model.parameters().some((p) => p.name === 'model.visual.merger.linear_fc2.weight'),
      'vision tower loaded',
    );

    // The fixture image is 96x64; Qwen3-VL's default budget scales it up to at least 65536 pixels.
    const batch = await imageBatch(dir);
    const last = batch.tokens.length - 2;
    const res = await model.forward(batch, { training: true });
    t.ok(Number.isFinite(res.logp[last]) && res.logp[last] < 0, 'a finite log-prob');
    model.zeroGrad();
    await model.backward({ dlogp: new Float32Array(batch.tokens.length).fill(1) });
    t.ok(
      model.getGradient('model.visual.patch_embed.proj.weight').some((v) => v !== 0),
      'the tower gets gradients',
    );
  });
