// device: cpu | cuda. cpu runs as always; cuda is refused at start-up, before anything loads, with the
// reason that holds in this process (no CUDA in the build, no device, or no CUDA model backend yet),
// from the config (worker.actor.device, worker.rollout.device) and from --device on generate, serve
// and eval. The expected reason is read from the build and the runtime here, not assumed.
import t from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrainingConfig } from '../../src/config/index.js';
import { requireDevice } from '../../src/engine/device.js';
import { buildInfo, cudaDevices } from '../../src/engine/system.js';
import { Trainer } from '../../src/train/trainer.js';
import { medix } from '../cli/run-medix.js';

const reason = !buildInfo().cuda
  ? /has no CUDA/
  : cudaDevices().count === 0
    ? /no CUDA device \(.+\)/
    : /not implemented yet/;

t.test('cpu runs; cuda is refused naming the setting and the reason', async (t) => {
  t.doesNotThrow(() => requireDevice('cpu', 'worker.actor.device'));
  t.throws(
    () => requireDevice('cuda', 'worker.actor.device'),
    /^worker\.actor\.device: device cuda: .*; use device cpu$/,
  );
  t.throws(() => requireDevice('cuda', 'x'), reason, `the reason here: ${reason}`);
  const found = cudaDevices();
  t.ok(found.count > 0 ? found.reason === '' : found.reason.length > 0, `cudaDevices(): ${JSON.stringify(found)}`);
});

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
    for (const key of ['worker.actor.device', 'worker.rollout.device']) {
      // The model directory and the data do not exist: the device is refused first.
      await t.rejects(
        Trainer.create(loadTrainingConfig(file, [`${key}=cuda`]), { baseDir: dir }),
        new RegExp(`^${key.replace(/\./g, '\\.')}: device cuda: `),
      );
    }
  },
);

t.test('--device on generate, serve and eval', async (t) => {
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
