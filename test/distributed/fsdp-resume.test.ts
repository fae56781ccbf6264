// A fully sharded `medix train` (ranks/fsdp-train-runs.ts) whose rank 0 is SIGKILLed at a random
// one of its file writes of the last checkpoint under mpirun -np 2 resumes under -np 4 from the slices the 2
// ranks wrote, bit for bit (weights and both moments, as the 4 ranks write them again), and ends
// where the uninterrupted 2-rank run ends within float summation order; `medix merge` of the
// 4-rank checkpoint is exactly the ranks' model, and the checkpoint loads into one unsharded
// process. Skipped, saying why, without MPI or mpirun.
import t from 'tap';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { latestValidCheckpoint, loadCheckpoint, verifyCheckpoint } from '../../src/train/checkpoint.js';
import { assembleSlices } from '../../src/train/checkpoint-full-shard.js';
import { mergeCheckpoint } from '../../src/train/merge.js';
import { crashAtWriteEnv } from '../helpers/crash-env.js';
import { mpiUnavailable } from '../helpers/mpirun.js';
import { rng, sameBits } from '../helpers/numeric.js';
import { writeTinyTrainData } from '../helpers/tiny-train-data.js';
import { skipIfMissing } from '../helpers/system-skip.js';
import { flat, maxAbsDiff, mpirunTrain } from './ranks/fsdp-train-runs.js';

// 4 ranks reduce-scatter in another order than 2: after a step the weights agree far within one step.
const WEIGHT_TOLERANCE = 1e-4;
const STEPS = 2;

const root = mkdtempSync(join(tmpdir(), 'medix-fsdp-resume-'));
writeTinyTrainData(root);
const crashDir = (run: string) => join(root, run, 'checkpoints');

const unavailable = mpiUnavailable();
t.test(
  'killed under 2 ranks, resumed under 4',
  skipIfMissing(unavailable, process.env.MEDIX_NO_MPI === '1'),
  async (t) => {
    // The uninterrupted run counts rank 0's changes to checkpoint files, to draw the kill from.
    const points = join(root, 'points');
    const env = crashAtWriteEnv({ dir: crashDir('straight'), rank: 0, at: 0, countFile: points });
    const straight = await mpirunTrain(root, 2, 'straight', STEPS, [], env);
    t.equal(straight.code, 0, `the uninterrupted run exits 0\n${straight.output}`);
    if (straight.code !== 0) return;

    const seed = Number(process.env.MEDIX_CRASH_SEED ?? Date.now() % 100000);
    const count = Number(readFileSync(points, 'utf8'));
    // Every checkpoint (after SFT, then each step) takes the same writes: a point of the last one's,
    // so its predecessor is in place.
    const perCheckpoint = count / (STEPS + 1);
    t.ok(Number.isInteger(perCheckpoint), `${count} writes make ${STEPS + 1} equal checkpoints`);
    const at = count - perCheckpoint + 1 + Math.floor(rng(seed)() * perCheckpoint);
    const kill = crashAtWriteEnv({ dir: crashDir('killed'), rank: 0, at });
    const killed = await mpirunTrain(root, 2, 'killed', STEPS, [], kill);
    t.ok(killed.code !== 0, `rank 0 killed before checkpoint file change ${at} of ${count} (MEDIX_CRASH_SEED=${seed})`);

    const from = latestValidCheckpoint(join(root, 'killed'), () => {});
    const resaved = join(root, 'resaved');
    const four = await mpirunTrain(root, 4, 'killed', STEPS, ['--resume', '--resave', resaved]);
    t.equal(four.code, 0, `mpirun -np 4 --resume exits 0\n${four.output}`);
    if (four.code !== 0) return;
    if (from) {
      // What the 4 ranks resumed with, written again by them: the 2 ranks' checkpoint, bit for bit.
      const a = assembleSlices(from.dir, verifyCheckpoint(from.dir));
      const again = join(resaved, 'checkpoints', 'step_000000');
      const b = assembleSlices(again, verifyCheckpoint(again));
      t.ok(
        sameBits(flat(a.model), flat(b.model)),
        `weights of step ${from.trainer.step} resumed by 4 ranks bit for bit`,
      );
      t.ok(sameBits(a.m, b.m) && sameBits(a.v, b.v), 'both moments resumed by 4 ranks bit for bit');
    }
    for (const [r, m] of four.memory().entries()) {
      const resident = m.sliceBytes + m.peakGatheredBytes;
      const formula = m.wholeStateBytes / 4 + m.largestUnitBytes;
      const ratio = (resident / m.wholeStateBytes).toFixed(3);
      const what = `rank ${r} of 4: resident ${resident} bytes ≈ whole/4 + one unit = ${formula} (ratio ${ratio})`;
      t.ok(Math.abs(resident - formula) <= 0.01 * m.wholeStateBytes, what);
    }
    const w = four.weights()[0];
    const diff = maxAbsDiff(w, straight.weights()[0]);
    t.ok(
      diff <= WEIGHT_TOLERANCE,
      `the resumed run ends within ${WEIGHT_TOLERANCE} of the uninterrupted one (${diff})`,
    );

    const last = latestValidCheckpoint(join(root, 'killed'), () => {})!.dir;
    t.equal(verifyCheckpoint(last).shards?.worldSize, 4, 'its last checkpoint is written by 4 ranks');
    const merged = join(root, 'merged');
    await mergeCheckpoint(last, merged, { dtype: 'f32' });
    t.ok(
      sameBits(flat(await loadModel(merged)), w),
      "medix merge of the 4-rank checkpoint is exactly the ranks' model",
    );
    t.ok(sameBits(flat((await loadCheckpoint(last)).model), w), 'the checkpoint loads into one unsharded process');
    await t.rejects(
      loadModel(join(last, 'model')),
      /holds its weights in .*slices: write a Hugging Face directory from it with medix merge/,
      'its model/ alone is refused, pointing to medix merge',
    );
  },
);
