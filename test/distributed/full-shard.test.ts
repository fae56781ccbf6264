// Full sharding under `mpirun -np 2` and `-np 4`: each rank trains on its share of the batch with
// only its shard of the weights, gradients and moments; the ranks end where one process training
// on the whole batch ends (within float summation order), and each rank's resident state is its
// 1/N of the whole plus one gathered unit, as measured in resident pages. Without MPI support or
// mpirun these tests are skipped, saying why.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Model } from '../../src/engine/model.js';
import { setComputeDtype } from '../../src/engine/bf16.js';
import { type FullShardMemory, fullShard, withWholeWeights } from '../../src/engine/full-shard.js';
import { mpirun, mpiUnavailable } from '../helpers/mpirun.js';
import { sameBits } from '../helpers/numeric.js';
import { skipIfMissing } from '../helpers/system-skip.js';
import { trainSteps } from './ranks/dp-steps.js';
import { FSDP_STEPS, fsdpConfig, noDecay } from './ranks/full-shard-model.js';

const script = join(import.meta.dirname, 'ranks', 'full-shard.ts');
// Gradients are summed across ranks in another order than one process sums its tokens, and AdamW
// divides each gradient by its own running magnitude, so the last-bit differences of small gradients
// reach the weights at the scale of the learning rate: after three steps (lr 0.05) the weights agree
// with one process to this much (a norm that missed its decay exemption would be off by lr × wd ×
// 1 = 5e-3 per step). The data-parallel mode sums the same per-rank gradients (MPI may order the
// sum of four ranks differently in a reduce than in a reduce-scatter), so full sharding must agree
// with it far more tightly: at 4 ranks it was 3.7e-5 with a scalar SwiGLU and 7.3e-5 with the vector
// one (which elements sit near zero changes with the last bits anywhere), i.e. 0.15% of lr; the
// tolerance allows twice that, still 30 times below one missed decay exemption.
const WEIGHT_TOLERANCE = 1e-3;
const SAME_SUMS_TOLERANCE = 1.5e-4;
const PAGE = Number(spawnSync('getconf', ['PAGESIZE'], { encoding: 'utf8' }).stdout) || 4096;

const flat = (m: Model) => new Float32Array(m.parameters().flatMap((p) => [...m.getParameter(p.name)]));
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

// The one-process run the ranks must match, and the units of this model (embedding, each layer,
// the final norm, the head), each padded to a multiple of the ranks.
const initial = flat(Model.create(fsdpConfig, { seed: 7 }));
const single = Model.create(fsdpConfig, { seed: 7 });
const singleNorms = await trainSteps(single, FSDP_STEPS, undefined, noDecay);
const singleWeights = flat(single);
// The same fully sharded in bf16 in one process: units gathered in bf16, every op on rounded weights.
const single16 = Model.create(fsdpConfig, { seed: 7 });
fullShard(single16);
setComputeDtype(single16, 'bf16');
const single16Norms = await trainSteps(single16, FSDP_STEPS, undefined, noDecay);
const single16Weights = await withWholeWeights(single16, () => flat(single16));
// The ranks' bf16 weights are their masters rounded: where the masters differ in the last bits (as
// in f32 above), one rounding can fall on the other side, a bf16 ulp apart (2^-7 |w| at most).
const BF16_ULP = 2 ** -7;
const unitOf = (name: string) => /layers\.\d+/.exec(name)?.[0] ?? name;
const unitSizes = new Map<string, number>();
for (const p of single.parameters()) unitSizes.set(unitOf(p.name), (unitSizes.get(unitOf(p.name)) ?? 0) + p.numel);
const unitNumels = [...unitSizes.values()];

const unavailable = mpiUnavailable();
for (const size of [2, 4]) {
  const name = `${size} ranks, fully sharded: the one-process result with 1/${size} of the state per rank`;
  t.test(name, skipIfMissing(unavailable, process.env.MEDIX_NO_MPI === '1'), async (t) => {
    const out = mkdtempSync(join(tmpdir(), `medix-fsdp${size}-`));
    const run = await mpirun(size, script, [out]);
    t.equal(run.code, 0, `mpirun exits 0\n${run.output}`);
    if (run.code !== 0) return;
    const ranks = Array.from({ length: size }, (_, r) => JSON.parse(readFileSync(join(out, `rank-${r}.json`), 'utf8')));
    const readF32 = (file: string) => new Float32Array(new Uint8Array(readFileSync(join(out, file))).buffer);
    const weights = ranks.map((_, r) => readF32(`rank-${r}.f32`));

    singleNorms.forEach((n, i) => {
      t.ok(n > 0.5, `step ${i + 1}: a real gradient (norm ${n}), clipped at 0.5`);
      for (const r of ranks) {
        const what = `rank ${r.rank} step ${i + 1}: global norm ${r.gradNorms[i]} = ${n} (one process)`;
        t.ok(Math.abs(r.gradNorms[i] - n) <= 1e-4 * n, what);
      }
    });
    weights.forEach((w, r) => t.ok(sameBits(w, weights[0]), `rank ${r} gathers the same weights as rank 0`));
    const diff = maxAbsDiff(weights[0], singleWeights);
    t.ok(diff <= WEIGHT_TOLERANCE, `weights match one process within ${WEIGHT_TOLERANCE} (max diff ${diff})`);
    const moved = maxAbsDiff(singleWeights, initial);
    t.ok(moved > 50 * WEIGHT_TOLERANCE, `the steps moved the weights far beyond the tolerance (${moved})`);
    const dpDiff = maxAbsDiff(weights[0], readF32('rank-0-dp.f32'));
    const vsDp = `weights match data parallel with the optimizer sharded by tensor within ${SAME_SUMS_TOLERANCE}`;
    t.ok(dpDiff <= SAME_SUMS_TOLERANCE, `${vsDp} (max diff ${dpDiff})`);

    // Memory: the shards (weights, gradients, two moments) are 1/N of each padded unit; at most one
    // unit's weights and gradients were in place at once, besides the partial pages at unit edges.
    const edges = 2 * (unitNumels.length + 1) * PAGE; // two layouts (weights, gradients)
    const largestUnit = 8 * Math.max(...unitNumels);
    const shards = 16 * unitNumels.reduce((n, u) => n + Math.ceil(u / size), 0);
    for (const r of ranks) {
      const m: FullShardMemory = r.afterSteps;
      t.equal(m.sliceBytes, shards, `rank ${r.rank}: shards of ${m.sliceBytes} bytes = 16 × Σ ceil(unit / ${size})`);
      t.equal(m.wholeStateBytes, 16 * single.numParameters);
      t.equal(m.largestUnitBytes, largestUnit);
      const peak = m.peakGatheredBytes;
      const oneUnit = `peak ${peak} bytes, unit ${largestUnit}, edge pages ≤ ${edges}`;
      t.ok(peak >= largestUnit && peak <= largestUnit + edges, `rank ${r.rank}: one unit at a time (${oneUnit})`);
      const left = r.released.gatheredBytes;
      t.ok(left <= edges, `rank ${r.rank}: after withWholeWeights only edge pages stay (${left} bytes)`);
      const resident = m.sliceBytes + m.peakGatheredBytes;
      const formula = m.wholeStateBytes / size + largestUnit;
      const ratio = (resident / m.wholeStateBytes).toFixed(3);
      const slack = edges + 16 * size * unitNumels.length; // edge pages, padding
      const what = `resident ${resident} bytes ≈ whole/${size} + one unit = ${formula} (ratio ${ratio})`;
      t.ok(Math.abs(resident - formula) <= slack, `rank ${r.rank}: ${what}`);
      const paddedBytes = (u: number) => 4 * size * Math.ceil(u / size);
      const padded = unitNumels.reduce((n, u) => n + paddedBytes(u), 0);
      // The embedding's backward needs no weights (it scatters rows of the incoming gradient).
      const gathered = (2 * padded - paddedBytes(unitNumels[0])) * FSDP_STEPS;
      t.equal(m.allgatherBytes, gathered, `rank ${r.rank}: each unit gathered for its forward and its backward`);
      t.equal(m.reduceScatterBytes, padded * FSDP_STEPS, `rank ${r.rank}: gradients reduce-scattered once a step`);
      const m16: FullShardMemory = r.bf16Memory;
      t.equal(m16.allgatherBytes * 2, m.allgatherBytes, `rank ${r.rank}: bf16 compute gathers half the bytes`);
      t.equal(m16.reduceScatterBytes, m.reduceScatterBytes, `rank ${r.rank}: gradients still reduced in f32`);
    }

    // bf16 compute: the one-process fully sharded bf16 run, within the f32 tolerance plus a bf16 ulp.
    single16Norms.forEach((n, i) => {
      for (const r of ranks) {
        const what = `bf16: rank ${r.rank} step ${i + 1}: global norm ${r.bf16GradNorms[i]} = ${n} (one process)`;
        t.ok(Math.abs(r.bf16GradNorms[i] - n) <= 1e-4 * n, what);
      }
    });
    const w16 = readF32('rank-0-bf16.f32');
    const worst = w16.reduce((m, x, i) => {
      const allowed = WEIGHT_TOLERANCE + BF16_ULP * Math.abs(single16Weights[i]);
      return Math.max(m, Math.abs(x - single16Weights[i]) / allowed);
    }, 0);
    t.ok(worst <= 1, `bf16: weights match one process within ${WEIGHT_TOLERANCE} + a bf16 ulp (worst ${worst})`);
    const apart = maxAbsDiff(w16, weights[0]);
    t.ok(apart > 0, `bf16: and differ from the f32 run (${apart}): the units did compute in bf16`);
  });
}
