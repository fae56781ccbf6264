// A training row whose image is corrupt past its header loads (the data loader reads only headers) and
// fails when training preprocesses it: it is a bad row under data.on_bad_row, never a crash. With
// skip, the run goes on without it and says once which row and image; with stop, the run stops with a
// DataError naming them. Both paths that preprocess training rows are covered: the SFT warm-up (all
// rows at once) and a rollout (the rows of a step, while generation runs).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadTrainingConfig } from '../../src/config/index.js';
import { DataError } from '../../src/data/index.js';
import { configDir, Trainer } from '../../src/train/trainer.js';
import { writeVisionQuickstartInputs } from '../../src/train/vision-quickstart.js';

const file = join(import.meta.dirname, '../../examples/quickstart-vision.yaml');
const dir = mkdtempSync(join(tmpdir(), 'medix-bad-images-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// Two training images per kind (6 rows), one held-out per kind; the first training row's image keeps
// its PNG header and loses the rest.
const paths = await writeVisionQuickstartInputs(file, join(dir, 'inputs'), { train: 2, heldout: 1 });
const trainFile = paths.find((p) => p.startsWith('data.train_files='))!.split('=')[1];
const firstRow = JSON.parse(readFileSync(trainFile, 'utf8').split('\n')[0]);
const corrupt = join(dirname(trainFile), firstRow.images[0]);
writeFileSync(corrupt, readFileSync(corrupt).subarray(0, 100));
const badRow = `${trainFile}:1: image 1`;

async function train(run: string, overrides: string[]): Promise<string[]> {
  const logs: string[] = [];
  const cfg = loadTrainingConfig(file, [
    ...paths,
    `trainer.save_checkpoint_path=${join(dir, run)}`,
    'trainer.max_steps=1',
    'trainer.save_freq=-1',
    'data.max_response_length=8',
    'data.rollout_batch_size=6',
    'algorithm.online_filtering=false',
    'worker.actor.global_batch_size=24',
    'worker.actor.micro_batch_size_per_device_for_update=24',
    'worker.rollout.val_override_config.n=1',
    ...overrides,
  ]);
  const trainer = await Trainer.create(cfg, { baseDir: configDir(file), log: (m) => logs.push(m) });
  await trainer.run();
  return logs;
}

const skipped = (logs: string[]) => logs.filter((m) => m.includes('the row is skipped from now on'));

t.test('skip: a rollout leaves the row out, says so once, and the run goes on', async (t) => {
  const logs = await train('skip-rollout', ['sft.epochs=0']);
  t.equal(skipped(logs).length, 1, 'one message for the row');
  t.match(skipped(logs)[0], badRow, 'naming the row and the image');
  t.match(skipped(logs)[0], /not a readable image|libpng|corrupt/, 'and the cause');
  const summary = JSON.parse(readFileSync(join(dir, 'skip-rollout', 'summary.json'), 'utf8'));
  t.equal(summary.steps, 1, 'the step trained on the other rows');
});

t.test('skip: the SFT warm-up leaves the row out too', async (t) => {
  const logs = await train('skip-sft', ['sft.epochs=1']);
  t.equal(skipped(logs).length, 1, 'found once, at the warm-up, and not again in the step');
  t.match(skipped(logs)[0], badRow);
});

t.test('stop: the run stops with a DataError naming the row and the image', async (t) => {
  for (const sft of ['sft.epochs=0', 'sft.epochs=1']) {
    const err = await train(`stop-${sft.at(-1)}`, ['data.on_bad_row=stop', sft]).then(
      () => null,
      (e: unknown) => e,
    );
    t.ok(err instanceof DataError, `${sft}: a DataError`);
    t.match((err as Error).message, badRow, `${sft}: naming the row and the image`);
    t.match((err as Error).message, "data.on_bad_row is 'stop'", `${sft}: and the policy`);
  }
});
