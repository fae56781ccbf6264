// The visual quickstart (`npm run train:vision`, examples/quickstart-vision.yaml): writes the seeded
// synthetic image data set (src/data/synthetic-vision.ts) and a random tiny Qwen3-VL directory (the
// real Qwen3 tokenizer, with a chat template that writes image tokens), trains it with the config
// (SFT warm-up, then DAPO), and adds to summary.json the held-out accuracy on the image questions after
// SFT and after RL, and the accuracy a policy blind to the images would get.
import { copyFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadTrainingConfig } from '../config/index.js';
import { imageAccuracyChance, writeVisionDataset } from '../data/synthetic-vision.js';
import { writeRandomModelDir } from '../model/random-model-dir.js';
import { atomicWriteFileSync } from '../util/atomic-write.js';
import { configDir, Trainer, type TrainSummary } from './trainer.js';

export interface VisionQuickstartOptions {
  /** key=value overrides of the config, as `medix train` takes them. */
  overrides?: string[];
  /** Where the data set and the model are written (default: runs/quickstart-vision-inputs beside examples/). */
  inputsDir?: string;
  /** Rows of each image kind (radiograph, CT, fundus) in the train and held-out files. */
  trainPerKind?: number;
  heldoutPerKind?: number;
  log?: (message: string) => void;
}

export interface VisionQuickstartSummary extends TrainSummary {
  heldout_image_accuracy_after_sft: number | null;
  heldout_image_accuracy_after_rl: number | null;
  image_accuracy_chance: number;
}

/** Inputs for `configFile`: the data files and the model directory it trains on, written under `dir`. */
export async function writeVisionQuickstartInputs(
  configFile: string,
  dir: string,
  perKind: { train: number; heldout: number },
): Promise<string[]> {
  dir = resolve(dir); // the overrides name absolute paths: relative ones would resolve against the config's folder
  const data = await writeVisionDataset(join(dir, 'data'), {
    seed: 1,
    trainPerKind: perKind.train,
    heldoutPerKind: perKind.heldout,
  });
  const model = join(dir, 'model');
  await writeRandomModelDir(model, { preset: 'tiny-vl', seed: 0, overwrite: true });
  copyFileSync(join(configDir(configFile), 'chat_template_vl.jinja'), join(model, 'chat_template.jinja'));
  return [`data.train_files=${data.train}`, `data.val_files=${data.heldout}`, `worker.actor.model.model_path=${model}`];
}

export async function runVisionQuickstart(
  configFile: string,
  o: VisionQuickstartOptions = {},
): Promise<VisionQuickstartSummary> {
  const inputs = o.inputsDir ?? resolve(configDir(configFile), '../runs/quickstart-vision-inputs');
  const paths = await writeVisionQuickstartInputs(configFile, inputs, {
    train: o.trainPerKind ?? 128,
    heldout: o.heldoutPerKind ?? 24,
  });
  const cfg = loadTrainingConfig(configFile, [...paths, ...(o.overrides ?? [])]);
  const trainer = await Trainer.create(cfg, { baseDir: configDir(configFile), log: o.log });
  const s = await trainer.run();
  const summary: VisionQuickstartSummary = {
    ...s,
    heldout_image_accuracy_after_sft: s.heldout_accuracy_after_sft,
    heldout_image_accuracy_after_rl: s.heldout_accuracy_after_rl,
    image_accuracy_chance: imageAccuracyChance(),
  };
  atomicWriteFileSync(join(s.run_dir, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  return summary;
}
