// A short `medix train` on the visual quickstart's config (examples/quickstart-vision.yaml) for the tests
// of image rows in training: its data and model written small, one training image cut short, and the
// overrides of a one-step run.
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { writeVisionQuickstartInputs } from '../../src/train/vision-quickstart.js';

export const visionConfig = join(import.meta.dirname, '../../examples/quickstart-vision.yaml');

/**
 * The quickstart's inputs under `dir`, two training images per kind (6 rows) and one held out: the
 * overrides naming them, and the training file.
 */
export async function writeSmallVisionInputs(dir: string): Promise<{ paths: string[]; trainFile: string }> {
  const paths = await writeVisionQuickstartInputs(visionConfig, dir, { train: 2, heldout: 1 });
  return { paths, trainFile: paths.find((p) => p.startsWith('data.train_files='))!.split('=')[1] };
}

/**
 * Cuts the first row's first image of `trainFile` down to its PNG header (it loads, and fails to
 * decode); returns how a fault names it.
 */
export function cutShortFirstImage(trainFile: string): string {
  const image = join(dirname(trainFile), JSON.parse(readFileSync(trainFile, 'utf8').split('\n')[0]).images[0]);
  writeFileSync(image, readFileSync(image).subarray(0, 100));
  return `${trainFile}:1: image 1`;
}

/** One RL step over the 6 training rows in one batch, 8 response tokens, no online filtering, no checkpoint. */
export function oneStep(run: string): string[] {
  return [
    `trainer.save_checkpoint_path=${run}`,
    'trainer.max_steps=1',
    'trainer.save_freq=-1',
    'data.max_response_length=8',
    'data.rollout_batch_size=6',
    'algorithm.online_filtering=false',
    'worker.actor.global_batch_size=24',
    'worker.rollout.val_override_config.n=1',
  ];
}
