// medix train on image rows (a tiny Qwen3-VL on the visual quickstart's synthetic images).
// A training row whose image is corrupt past its header loads (the data loader reads only headers) and
// fails when training preprocesses it: it is a bad row under data.on_bad_row, never a crash. With
// skip, the run goes on without it and says once which row and image; with stop, the run stops with a
// DataError naming them. Both paths that preprocess training rows are covered: the SFT warm-up (all
// rows at once; an sft.train_files with no decodable image stops it) and a rollout (the rows of a step,
// while generation runs).
// worker.actor.model.freeze_vision_tower keeps the tower's weights bit for bit through a step while the
// decoder learns, and the reference policy sees the rows' images: with the KL loss on, the policy and
// the reference agree at the first step (a reference scoring without the images would not).
// Preprocessing overlaps generation: a step's first generation starts while later rows' images are
// still being preprocessed (the training images are enlarged so that each takes a while to decode).
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import sharp from 'sharp';
import { loadTrainingConfig } from '../../src/config/index.js';
import { DataError } from '../../src/data/index.js';
import { loadModel } from '../../src/model/load.js';
import { loadCheckpoint } from '../../src/train/checkpoint.js';
import { configDir, Trainer } from '../../src/train/trainer.js';
import { cutShortFirstImage, oneStep, visionConfig, writeSmallVisionInputs } from '../helpers/vision-step.js';

const file = visionConfig;
const dir = mkdtempSync(join(tmpdir(), 'medix-bad-images-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));

// Two training images per kind (6 rows), one held-out per kind; the first training row's image keeps
// its PNG header and loses the rest.
const { paths, trainFile } = await writeSmallVisionInputs(join(dir, 'inputs'));
const badRow = cutShortFirstImage(trainFile);
// The other training images at 1024 x 1024 (still resized to the config's 64 x 64, so the prompts keep
// their image tokens): decoding one takes tens of milliseconds on the image pool's one thread.
const trainImages = readFileSync(trainFile, 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .flatMap((l) => JSON.parse(l).images as string[]);
for (const image of new Set(trainImages.map((f) => join(dirname(trainFile), f)))) {
  const big = await sharp(image).resize(1024, 1024, { kernel: 'cubic' }).png({ compressionLevel: 1 }).toBuffer();
  writeFileSync(image, big);
}

async function train(run: string, overrides: string[]): Promise<string[]> {
  const logs: string[] = [];
  const cfg = loadTrainingConfig(file, [
    ...paths,
    ...oneStep(join(dir, run)),
    'worker.actor.micro_batch_size_per_device_for_update=24',
    ...overrides,
  ]);
  const trainer = await Trainer.create(cfg, { baseDir: configDir(file), log: (m) => logs.push(m) });
  await trainer.run();
  return logs;
}

/** The RL step's row of a run's metrics.jsonl. */
function metricsAt(run: string, step: number): Record<string, number> {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l))
    .find((r) => r.step === step && r['reward/overall'] !== undefined);
}

const skipped = (logs: string[]) => logs.filter((m) => m.includes('the row is skipped from now on'));

t.test('skip: a rollout leaves the row out, says so once, and the run goes on', async (t) => {
  const logs = await train('skip-rollout', ['sft.epochs=0']);
  t.equal(skipped(logs).length, 1, 'one message for the row');
  t.match(skipped(logs)[0], badRow, 'naming the row and the image');
  t.match(skipped(logs)[0], /not a readable image|libpng|corrupt/, 'and the cause');
  const summary = JSON.parse(readFileSync(join(dir, 'skip-rollout', 'summary.json'), 'utf8'));
  t.equal(summary.steps, 1, 'the step trained');
  const step1 = metricsAt(join(dir, 'skip-rollout'), 1);
  t.equal(step1['filter/kept_samples'], 5 * 4, 'on the other 5 rows (4 samples each)');
  t.equal(step1['data/bad_image_rows'], 1, 'counted');
  // Generation waits only for its own row's images: it started before the step's last image was ready.
  const [wait, images] = [step1['timing/image_wait'], step1['timing/images']];
  t.ok(wait < images, `preprocessing overlaps generation: first generation at ${wait} s, last image at ${images} s`);
});

t.test('skip: the SFT warm-up leaves the row out too', async (t) => {
  const logs = await train('skip-sft', ['sft.epochs=1']);
  t.equal(skipped(logs).length, 1, 'found once, at the warm-up, and not again in the step');
  t.match(skipped(logs)[0], badRow);
});

t.test('skip: an sft.train_files whose every image is bad stops the warm-up, naming the file', async (t) => {
  const sftFile = join(dirname(trainFile), 'sft-bad.jsonl');
  writeFileSync(sftFile, `${readFileSync(trainFile, 'utf8').trim().split('\n')[0]}\n`); // the bad row alone
  const err = await train('skip-sft-file', ['sft.epochs=1', `sft.train_files=${sftFile}`]).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof DataError, 'a DataError, not a warm-up over no rows');
  t.match((err as Error).message, /sft\.train_files .*sft-bad\.jsonl: every row has an image that cannot be decoded/);
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

t.test('a frozen tower keeps its weights through a step; the reference sees the images', async (t) => {
  const run = join(dir, 'frozen');
  await train('frozen', [
    'sft.epochs=0',
    'trainer.save_freq=1',
    'worker.actor.model.freeze_vision_tower=true',
    'algorithm.use_kl_loss=true',
    'algorithm.kl_coef=0.1',
    'worker.actor.entropy_coef=0.05', // a gradient although every response may score alike
  ]);
  const before = await loadModel(paths.find((p) => p.startsWith('worker.actor.model.model_path='))!.split('=')[1]);
  const after = (await loadCheckpoint(join(run, 'checkpoints', 'step_000001'))).model;
  const differ = (name: string) => {
    const [a, b] = [before.getParameter(name), after.getParameter(name)];
    return a.some((v, i) => !Object.is(v, b[i]));
  };
  const names = before.parameters().map((p) => p.name);
  const tower = names.filter((n) => n.startsWith('model.visual.'));
  t.ok(tower.length > 10, `${tower.length} tower tensors`);
  t.same(tower.filter(differ), [], 'the tower: bit for bit');
  t.ok(names.filter((n) => !n.startsWith('model.visual.')).some(differ), 'the decoder moved');
  const step1 = metricsAt(run, 1);
  // The update's one mini-batch starts from the reference's weights: a KL of f32 noise at most. A
  // reference scoring blank images instead gave 1.9e-4 here (this untrained model barely looks).
  t.ok(Math.abs(step1['actor/kl_loss']) < 1e-6, `KL loss at step 1: ${step1['actor/kl_loss']}`);
});

t.test('a run whose every training row is bad stops, saying so', async (t) => {
  const one = join(dirname(trainFile), 'one-row.jsonl'); // beside train.jsonl: image paths are relative
  writeFileSync(one, `${readFileSync(trainFile, 'utf8').split('\n')[0]}\n`);
  const overrides = [
    'sft.epochs=0',
    `data.train_files=${one}`,
    'data.rollout_batch_size=1',
    'worker.actor.global_batch_size=4',
    'worker.actor.micro_batch_size_per_device_for_update=4',
  ];
  const err = await train('all-bad', overrides).then(
    () => null,
    (e: unknown) => e,
  );
  t.ok(err instanceof DataError, 'a DataError');
  t.match((err as Error).message, 'every row has an image that cannot be decoded');
});
