// The visual quickstart: `npm run train:vision [key=value ...]` (see examples/quickstart-vision.yaml).
import { join } from 'node:path';
import { runVisionQuickstart } from '../src/train/vision-quickstart.js';

const t0 = Date.now();
const s = await runVisionQuickstart(join(import.meta.dirname, 'quickstart-vision.yaml'), {
  overrides: process.argv.slice(2),
});
const fmt = (x: number | null) => (x === null ? 'n/a' : x.toFixed(3));
console.log(
  `medix train:vision: ${s.steps} steps in ${((Date.now() - t0) / 1000).toFixed(0)} s; held-out image accuracy ` +
    `after SFT ${fmt(s.heldout_image_accuracy_after_sft)}, after RL ${fmt(s.heldout_image_accuracy_after_rl)} (chance ${fmt(s.image_accuracy_chance)})`,
);
console.log(`medix train:vision: ${join(s.run_dir, 'summary.json')}, report ${s.report}`);
