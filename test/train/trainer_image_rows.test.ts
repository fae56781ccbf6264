// The trainer on image rows end to end, briefly: the visual quickstart's config on a few synthetic
// images, one SFT epoch and one RL step. It guards the path every image row takes (prompt ids whose
// image tokens the prompt formatter already widened, checked against the preprocessed images); before
// the fix the trainer widened them a second time and every image row failed in the SFT warm-up.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runVisionQuickstart } from '../../src/train/vision-quickstart.js';

const file = join(import.meta.dirname, '../../examples/quickstart-vision.yaml');

t.test('image rows go through the SFT warm-up, rollouts, the update and validation', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medix-trainer-image-rows-'));
  const overrides = [
    `trainer.save_checkpoint_path=${join(dir, 'run')}`,
    'trainer.max_steps=1',
    'trainer.save_freq=-1',
    'sft.epochs=1',
    'worker.reward.workers=0',
  ];
  const inputsDir = join(dir, 'inputs');
  const perKind = { trainPerKind: 2, heldoutPerKind: 2 };
  const s = await runVisionQuickstart(file, { inputsDir, ...perKind, overrides, log: () => {} });
  t.equal(s.steps, 1, 'one RL step');
  for (const k of ['heldout_image_accuracy_after_sft', 'heldout_image_accuracy_after_rl'] as const) {
    const v = s[k];
    t.ok(v !== null && v >= 0 && v <= 1, `${k} is an accuracy: ${v}`);
  }
});
