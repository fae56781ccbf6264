// A shorter visual quickstart (`npm run train:vision`): the synthetic image data set, a tiny Qwen3-VL
// and the real Qwen3 tokenizer, SFT warm-up then DAPO. The held-out accuracy on the image questions
// must end well above what a policy blind to the images gets, and the trained policy must fall back to
// about that when the held-out images are blanked: the accuracy comes from looking at the images.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { loadTrainingConfig } from '../../src/config/index.js';
import { configDir, Trainer } from '../../src/train/trainer.js';
import { runVisionQuickstart } from '../../src/train/vision-quickstart.js';

const file = join(import.meta.dirname, '../../examples/quickstart-vision.yaml');

/** heldout.jsonl with every image replaced by one plain grey image of the same size. */
async function blankedHeldout(data: string): Promise<string> {
  await sharp({ create: { width: 128, height: 128, channels: 3, background: { r: 60, g: 60, b: 60 } } })
    .png()
    .toFile(join(data, 'images', 'blank.png'));
  const rows = readFileSync(join(data, 'heldout.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => ({ ...JSON.parse(l), images: ['images/blank.png'] }));
  const out = join(data, 'heldout-blank.jsonl');
  writeFileSync(out, `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return out;
}

// The quickstart's training images (128 per kind), half its held-out ones (12 per kind) and 4 RL steps.
// Which image kinds SFT learns depends on rounding (the GEMM kernel, so the CPU) and on the seeds: with half
// the training images, held-out accuracy after SFT ranged 0.64-0.83 over seeds and kernels, and the test
// failed on one CPU. With all of them and a constant SFT lr, 0.80-0.93 after SFT until the log-prob head's
// rounding changed, then 0.52 with OpenBLAS: the SFT loss rose again over the last epochs. With the quickstart's
// cosine SFT schedule: 0.84 and 0.94 (seed 1, OpenBLAS and the portable kernel), 0.98 (seed 2, OpenBLAS).
t.test(
  'held-out image accuracy ends above chance after SFT and RL, and falls to chance without the images',
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'medix-quickstart-vision-'));
    const [inputs, run] = [join(dir, 'inputs'), join(dir, 'run')];
    const overrides = [`trainer.save_checkpoint_path=${run}`, 'trainer.max_steps=4', 'trainer.save_freq=-1'];
    const s = await runVisionQuickstart(file, {
      inputsDir: inputs,
      overrides,
      trainPerKind: 128,
      heldoutPerKind: 12,
      log: () => {},
    });
    t.equal(s.image_accuracy_chance, 0.5);
    const [sft, rl] = [s.heldout_image_accuracy_after_sft!, s.heldout_image_accuracy_after_rl!];
    t.ok(
      rl > s.image_accuracy_chance + 0.15,
      `after SFT ${sft}, after RL ${rl}: well above chance (${s.image_accuracy_chance})`,
    );
    t.same(
      JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')).heldout_image_accuracy_after_rl,
      rl,
      'summary.json',
    );
    // The RL steps trained (4 steps cannot be relied on to move held-out accuracy on every CPU): an update with
    // a gradient ran on kept samples.
    const rlRows = readFileSync(join(run, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((r) => r['reward/overall'] !== undefined);
    t.ok(
      rlRows.some((r) => r['actor/grad_norm'] > 0),
      `an RL update had a gradient (norms ${rlRows.map((r) => r['actor/grad_norm']).join(', ')})`,
    );

    // The trained policy (the run's last checkpoint) on the same questions with blank images.
    const paths = [
      `data.train_files=${join(inputs, 'data', 'train.jsonl')}`,
      `worker.actor.model.model_path=${join(inputs, 'model')}`,
    ];
    const blankCfg = loadTrainingConfig(file, [
      ...paths,
      ...overrides,
      `data.val_files=${await blankedHeldout(join(inputs, 'data'))}`,
      'worker.reward.workers=0',
    ]);
    const trainer = await Trainer.create(blankCfg, { resume: true, baseDir: configDir(file), log: () => {} });
    const blank = (await trainer.validate())['val/accuracy_llm'];
    // A policy that cannot see the image scores at most 1/2 on these balanced questions, up to sampling noise.
    t.ok(blank < s.image_accuracy_chance + 0.1, `blank images: accuracy ${blank}, no better than chance`);
  },
);
