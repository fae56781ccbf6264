// The MPI world under `mpirun -np 2`: collectives deliver the right values, a data-parallel model
// (gradients of half the batch per rank, optimizer sharded by tensor) ends where one process
// training on the whole batch ends, every rank holds identical weights, and the checkpoint the
// ranks write together loads in one process and merges into a Hugging Face directory holding
// exactly the trained weights. Without MPI support or mpirun these tests are skipped, saying why.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildInfo } from '../../src/engine/system.js';
import { world } from '../../src/engine/world.js';
import { loadModel } from '../../src/model/load.js';
import { loadCheckpoint, verifyCheckpoint } from '../../src/train/checkpoint.js';
import { mergeCheckpoint } from '../../src/train/merge.js';
import { hasMpirun, mpirun, mpiUnavailable } from '../helpers/mpirun.js';
import { freshModel, trainSteps } from './ranks/dp-steps.js';
import { sameBits } from '../helpers/numeric.js';
import { skipIfMissing } from '../helpers/system-skip.js';

const script = join(import.meta.dirname, 'ranks', 'collectives.ts');
// Float sums run in another order across ranks than in one process; the weights after two AdamW
// steps (lr 0.05) agree to this much.
const WEIGHT_TOLERANCE = 1e-5;

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

t.test('a plain process is a world of one where collectives are the identity', async (t) => {
  const w = world();
  t.match(w, { rank: 0, size: 1, backend: 'single', isRoot: true });
  t.same([...(await w.allreduceSum([1.5, -2]))], [1.5, -2]);
  t.same(await w.allgatherJson({ a: 1 }), [{ a: 1 }]);
  t.equal(await w.fromRoot(() => 7), 7);
  t.same(w.share(['a', 'b', 'c']), ['a', 'b', 'c']);
});

const unavailable = mpiUnavailable();
t.test(
  'two ranks: collectives, data-parallel steps, sharded checkpoint and merge',
  skipIfMissing(unavailable, process.env.MEDIX_NO_MPI === '1'),
  async (t) => {
    const out = mkdtempSync(join(tmpdir(), 'medix-mpi-'));
    const run = await mpirun(2, script, [out]);
    t.equal(run.code, 0, `mpirun exits 0\n${run.output}`);
    if (run.code !== 0) return;
    const ranks = [0, 1].map((r) => JSON.parse(readFileSync(join(out, `rank-${r}.json`), 'utf8')));

    for (const r of ranks) {
      t.match(r, { size: 2, backend: 'mpi' }, `rank ${r.rank} is in an MPI world of 2`);
      t.same(r.allreduce, [1 + 2, 0.5, -1], `rank ${r.rank}: allreduce sums`);
      t.equal(r.broadcast, 'from rank 1', `rank ${r.rank}: broadcast from rank 1`);
      t.same(
        r.gathered,
        [
          [0, 0],
          [1, 1000],
        ],
        `rank ${r.rank}: allgather in rank order, sizes differing`,
      );
      t.equal(r.fromRoot, 'decided by rank 0');
      t.equal(r.fromRootError, 'rank 0 refuses', `rank ${r.rank}: the root's error reaches every rank`);
    }

    // The optimizer is split by tensor: consecutive, disjoint, covering the model.
    const model = freshModel();
    const names = model.parameters().map((p) => p.name);
    t.ok(ranks[0].shard.parameters.length > 0 && ranks[1].shard.parameters.length > 0, 'both ranks own tensors');
    t.same(
      [...ranks[0].shard.parameters, ...ranks[1].shard.parameters],
      names,
      'rank 0 owns the first tensors, rank 1 the rest',
    );
    t.equal(ranks[0].shard.numel + ranks[1].shard.numel, model.numParameters);

    // One process on the whole batch, for comparison.
    const norms = await trainSteps(model, 2);
    t.same(ranks[0].gradNorms, ranks[1].gradNorms, 'every rank sees the same global gradient norm');
    ranks[0].gradNorms.forEach((n: number, i: number) =>
      t.ok(Math.abs(n - norms[i]) <= 1e-5 * norms[i], `step ${i + 1}: gradient norm ${n} = ${norms[i]} (one process)`),
    );
    t.ok(norms[0] > 0.5, 'the norm exceeds max_grad_norm, so clipping by the global norm is exercised');

    const single = new Float32Array(model.parameters().flatMap((p) => [...model.getParameter(p.name)]));
    const [w0, w1] = [0, 1].map(
      (r) => new Float32Array(new Uint8Array(readFileSync(join(out, `rank-${r}.f32`))).buffer),
    );
    t.ok(sameBits(w0, w1), 'both ranks hold bit-identical weights');
    const diff = maxAbsDiff(w0, single);
    t.ok(diff <= WEIGHT_TOLERANCE, `weights match one process within ${WEIGHT_TOLERANCE} (max diff ${diff})`);

    // The checkpoint the two ranks wrote: verified, loadable by one process (all moments reassembled).
    const ckpt = join(out, 'run', 'checkpoints', 'step_000002');
    const state = verifyCheckpoint(ckpt);
    t.equal(state.shards?.worldSize, 2);
    const back = await loadCheckpoint(ckpt);
    const loaded = new Float32Array(back.model.parameters().flatMap((p) => [...back.model.getParameter(p.name)]));
    t.ok(sameBits(loaded, w0), 'the checkpoint holds exactly the trained weights');
    const [mine, theirs] = [back.model.getOptimizerState(), model.getOptimizerState()];
    t.equal(mine.step, 2);
    const mDiff = maxAbsDiff(mine.m, theirs.m);
    t.ok(mDiff <= 1e-6, `first moments in parameter order match one process (max diff ${mDiff})`);
    t.ok(maxAbsDiff(mine.v, theirs.v) <= 1e-8, 'second moments match one process');

    // merge: one Hugging Face directory with exactly those weights.
    const merged = join(out, 'merged');
    await mergeCheckpoint(ckpt, merged, { dtype: 'f32' });
    const hf = await loadModel(merged);
    const mergedWeights = new Float32Array(hf.parameters().flatMap((p) => [...hf.getParameter(p.name)]));
    t.ok(sameBits(mergedWeights, w0), 'merged weights equal the trained weights bit for bit');

    // A missing shard is named, with the rank that wrote it.
    rmSync(join(ckpt, 'optimizer', 'rank-00002-of-00002.safetensors'));
    await t.rejects(
      mergeCheckpoint(ckpt, join(out, 'merged-2')),
      /optimizer\/rank-00002-of-00002\.safetensors \(written by rank 1 of 2\) missing/,
    );
  },
);

t.test(
  'a build without MPI refuses to run as one of several processes a launcher started',
  buildInfo().mpi
    ? { skip: 'this build has MPI (the refusal is for builds without it)' }
    : skipIfMissing(hasMpirun() ? null : 'mpirun is not installed'),
  async (t) => {
    const run = await mpirun(2, script, [mkdtempSync(join(tmpdir(), 'medix-nompi-'))]);
    t.not(run.code, 0);
    t.match(run.output, /one of 2 processes an MPI launcher started, but this build of medix has no MPI/);
  },
);
