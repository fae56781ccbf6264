// `medix train` on image rows as two ranks under mpirun, where one rank's copy of a training image is
// cut short past its header (a file that fails on one node only, and not on the rank that generates
// for that row): the ranks pool the faults they find, so with data.on_bad_row: skip both leave the row
// out of the same step, the log (rank 0's, whose own copy is fine) naming rank 1's file; with stop both stop with the same DataError, and the job ends instead of
// hanging in a collective (the code before the pooling hung here). Skipped, saying why, without MPI
// support or mpirun.
import t from 'tap';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Model } from '../../src/engine/model.js';
import { loadModel } from '../../src/model/load.js';
import { latestValidCheckpoint, loadCheckpoint } from '../../src/train/checkpoint.js';
import { mpirun, mpiUnavailable } from '../helpers/mpirun.js';
import { skipIfMissing } from '../helpers/system-skip.js';
import { cutShortFirstImage, oneStep, visionConfig, writeSmallVisionInputs } from '../helpers/vision-step.js';

const script = join(import.meta.dirname, 'ranks', 'vision-train.ts');
const flatWeights = (m: Model) => new Float32Array(m.parameters().flatMap((p) => [...m.getParameter(p.name)]));
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const config = visionConfig;

const unavailable = skipIfMissing(mpiUnavailable(), process.env.MEDIX_NO_MPI === '1');
t.test('a training image that fails on one rank only: both ranks decide alike', unavailable, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medix-mpi-vision-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { paths, trainFile } = await writeSmallVisionInputs(join(dir, 'inputs'));
  // Rank 1 reads its own copy of the data, whose first row's image keeps its PNG header only.
  const data1 = join(dir, 'data-rank1');
  cpSync(dirname(trainFile), data1, { recursive: true });
  const trainFile1 = join(data1, 'train.jsonl');
  const badRow = cutShortFirstImage(trainFile1);

  const runWith = async (name: string, policy: string) => {
    const out = join(dir, name);
    const common = [
      ...paths.filter((p) => !p.startsWith('data.train_files=')),
      ...oneStep(out),
      `data.on_bad_row=${policy}`,
      'sft.epochs=0',
      'data.shuffle=false', // the step's rows in file order: rank 0 generates row 1, whose image fails on rank 1
      'worker.actor.micro_batch_size_per_device_for_update=12',
      'worker.actor.entropy_coef=0.05',
    ];
    const runFile = join(dir, `${name}.json`);
    writeFileSync(
      runFile,
      JSON.stringify({
        config,
        overrides: [
          [`data.train_files=${trainFile}`, ...common],
          [`data.train_files=${trainFile1}`, ...common],
        ],
      }),
    );
    mkdirSync(out, { recursive: true });
    return { out, ...(await mpirun(2, script, [runFile, out], {}, 180)) };
  };

  const skip = await runWith('skip', 'skip');
  t.equal(skip.code, 0, `skip: mpirun exits 0\n${skip.code === 0 ? '' : skip.output}`);
  if (skip.code === 0) {
    const step1 = readFileSync(join(skip.out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((r) => r.step === 1 && r['reward/overall'] !== undefined);
    t.equal(step1['filter/kept_samples'], 5 * 4, 'the step trained on the other 5 rows (4 samples each)');
    t.equal(step1['data/bad_image_rows'], 1, 'the row counted once');
    const log = readFileSync(join(skip.out, 'rank-0.log'), 'utf8');
    t.match(log, badRow, "rank 0 reports rank 1's fault, naming the row and the image");
    t.match(log, 'the row is skipped from now on');
  }

  const stop = await runWith('stop', 'stop');
  t.not(stop.code, 0, 'stop: the job fails');
  t.match(stop.output, badRow, 'with the DataError naming the row and the image');
  t.match(stop.output, "data.on_bad_row is 'stop'");
  t.notOk(existsSync(join(stop.out, 'summary.json')), 'and the run did not finish');
  t.ok(existsSync(join(skip.out, 'summary.json')), '(as the skip run did)');
});

// Qwen3-VL fully sharded in `medix train`: 5 rows of 5 samples dealt to two ranks (13 and 12 samples) in
// update micro-batches of 1 and log-prob ones of 4, so rank 1 runs an empty pass (no image) in each where
// rank 0 runs one with images; the
// tower's units are gathered and reduced by every pass alike, so the ranks' collectives match. The
// same step as the data-parallel ranks: the same samples (both generate with the same whole weights),
// each rank's gradient from the same weights, summed over the two, only the norm's partial sums split
// otherwise. Measured in the run's own report, against the step's own movement.
const SHARD_TOLERANCE = 1e-6;
t.test('Qwen3-VL fully sharded over two ranks takes the data-parallel step', unavailable, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'medix-mpi-vision-fsdp-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { paths } = await writeSmallVisionInputs(join(dir, 'inputs'));
  const train = async (name: string, fullShard: boolean) => {
    const out = join(dir, name);
    const overrides = [
      ...paths,
      ...oneStep(out),
      'sft.epochs=0',
      'data.shuffle=false',
      'data.rollout_batch_size=5',
      'worker.rollout.n=5',
      'worker.actor.global_batch_size=25',
      'worker.actor.micro_batch_size_per_device_for_update=1',
      'worker.actor.micro_batch_size_per_device_for_experience=4',
      'worker.actor.entropy_coef=0.05',
      `worker.actor.fsdp.enable_full_shard=${fullShard}`,
    ];
    const runFile = join(dir, `${name}.json`);
    writeFileSync(runFile, JSON.stringify({ config, overrides: [overrides, overrides] }));
    mkdirSync(out, { recursive: true });
    const r = await mpirun(2, script, [runFile, out], {}, 180);
    t.equal(r.code, 0, `${name}: mpirun exits 0\n${r.code === 0 ? '' : r.output}`);
    const last = r.code === 0 ? latestValidCheckpoint(out, () => {}) : null;
    return last ? flatWeights((await loadCheckpoint(last.dir)).model) : null;
  };
  const [dp, sharded] = [await train('dp', false), await train('fsdp', true)];
  if (!dp || !sharded) return;
  const model = paths.find((p) => p.startsWith('worker.actor.model.model_path='))!.split('=')[1];
  const moved = maxAbsDiff(dp, flatWeights(await loadModel(model)));
  const diff = maxAbsDiff(sharded, dp);
  t.ok(moved > 100 * SHARD_TOLERANCE, `the step moved the weights (max ${moved.toExponential(2)})`);
  t.ok(diff <= SHARD_TOLERANCE, `fully sharded within ${SHARD_TOLERANCE} of data parallel (${diff.toExponential(2)})`);
});
