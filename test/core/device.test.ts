// device: cpu | cuda. cpu runs as always; cuda, where this process cannot use it, is refused at start-up,
// before anything loads, with the reason that holds here (no CUDA in the build, or no device), from the
// config (worker.actor.device, worker.rollout.device) and from --device on generate, serve and eval. A
// model asked for on cuda refuses what has no CUDA kernels yet (a vision tower) by name. The
// expected reason is read from the build and the runtime here, not assumed.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainingConfig } from '../../src/config/index.js';
import { requireDevice } from '../../src/engine/device.js';
import { buildInfo, cudaDevices } from '../../src/engine/system.js';
import { Model } from '../../src/engine/model.js';
import { MODEL_PRESETS, type ModelPreset } from '../../src/model/presets.js';
import { Trainer } from '../../src/train/trainer.js';
import { medix } from '../cli/run-medix.js';

const gpu = buildInfo().cuda && cudaDevices().count > 0;
const reason = !buildInfo().cuda ? /has no CUDA/ : /no CUDA device \(.+\)/;

t.test(
  'cpu runs; cuda is refused naming the setting and the reason',
  { skip: gpu && 'this process has a GPU' },
  async (t) => {
    t.doesNotThrow(() => requireDevice('cpu', 'worker.actor.device'));
    t.throws(
      () => requireDevice('cuda', 'worker.actor.device'),
      /^worker\.actor\.device: device cuda: .*; use device cpu$/,
    );
    t.throws(() => requireDevice('cuda', 'x'), reason, `the reason here: ${reason}`);
    const found = cudaDevices();
    t.ok(found.count > 0 ? found.reason === '' : found.reason.length > 0, `cudaDevices(): ${JSON.stringify(found)}`);
  },
);

t.test(
  'worker.actor.device and worker.rollout.device: cpu by default, checked before the trainer loads anything',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'medix-device-'));
    const file = join(dir, 'c.yaml');
    writeFileSync(
      file,
      'data: { train_files: absent.jsonl }\nworker: { actor: { model: { model_path: absent-model } } }\n',
    );
    const c = loadTrainingConfig(file);
    t.equal(c.worker.actor.device, 'cpu');
    t.equal(c.worker.rollout.device, 'cpu');
    t.throws(
      () => loadTrainingConfig(file, ['worker.actor.device=gpu']),
      /worker\.actor\.device: 'gpu' is not allowed; allowed: cpu, cuda/,
    );
    t.throws(
      () => loadTrainingConfig(file, ['worker.actor.device=cuda']),
      /worker\.rollout\.device: must equal worker\.actor\.device \(cuda\): rollouts run on the policy/,
    );
    if (gpu) {
      t.comment('skipped: this machine has a CUDA device, so device cuda is not refused here');
      return;
    }
    // The model directory and the data do not exist: the device is refused first.
    await t.rejects(
      Trainer.create(loadTrainingConfig(file, ['worker.actor.device=cuda', 'worker.rollout.device=cuda']), {
        baseDir: dir,
      }),
      /^worker\.actor\.device: device cuda: /,
    );
  },
);

/** A preset's config with the Qwen3 tokenizer's vocabulary (the vision presets' image token is in it). */
const presetConfig = (p: ModelPreset) => ({ ...structuredClone(MODEL_PRESETS[p]), vocabSize: 151936 });

t.test('a model on cuda: refused here with the reason, text and vision models alike', async (t) => {
  const dense = presetConfig('tiny');
  for (const preset of ['tiny', 'tiny-vl', 'tiny-moe'] as const) {
    const cfg = presetConfig(preset);
    if (gpu) t.equal(Model.create(cfg, { device: 'cuda' }).device, 'cuda', `${preset} on the GPU`);
    else t.throws(() => Model.create(cfg, { device: 'cuda' }), /no CUDA|cuda backend/, `${preset}: no GPU here`);
  }
  t.equal(Model.create(dense).device, 'cpu', 'cpu by default');
});

t.test('--device on generate, serve and eval', { skip: gpu && 'this process has a GPU' }, async (t) => {
  const runs = {
    generate: ['generate', '--model', 'absent-model', '--prompt', 'hi'],
    serve: ['serve', '--model', 'absent-model', '--port', '0'],
    eval: ['eval', '--model', 'absent-model', '--output-dir', mkdtempSync(join(tmpdir(), 'medix-device-eval-'))],
  };
  for (const [name, args] of Object.entries(runs)) {
    const r = medix(...args, '--device', 'cuda');
    t.equal(r.status, 1, `${name} --device cuda fails`);
    t.match(
      r.stderr,
      /^medix: --device: device cuda: /,
      `${name}: refused before loading the model: ${r.stderr.trim()}`,
    );
    t.match(r.stderr, reason);
  }
  const bad = medix('generate', '--model', 'm', '--prompt', 'p', '--device', 'tpu');
  t.match(bad.stderr, /--device.*'tpu' is invalid\. Allowed choices are cpu, cuda/, 'a bad device is named');
});
