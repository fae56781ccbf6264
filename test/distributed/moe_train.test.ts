// Data-parallel training of a mixture-of-experts model under `mpirun -np 2`, and fully sharded under
// `mpirun -np 4`: three updates of a
// tiny-moe-shaped model through the trainer's update code (load-balancing loss included), each rank
// back-propagating its share of the sequences, end where one process on all of them ends, up to
// float rounding; both ranks hold identical weights; the routing figures summed over the ranks are
// the one process's. Skipped, saying why, without MPI support or mpirun.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Model } from '../../src/engine/model.js';
import { mpirun, mpiUnavailable } from '../helpers/mpirun.js';
import { sameBits } from '../helpers/numeric.js';
import { skipIfMissing } from '../helpers/system-skip.js';
import { freshMoeModel, moeSteps, STEPS } from './ranks/moe-steps.js';

const script = join(import.meta.dirname, 'ranks', 'moe-train.ts');
// Two ranks add gradients in another order than one process, and AdamW turns the rounding of
// gradients near zero into steps of up to lr (1e-2) times a small fraction: after 3 steps the
// weights agree to 1% of one step (measured: 2.6e-5).
const WEIGHT_TOLERANCE = 1e-4;

const flat = (m: Model) => new Float32Array(m.parameters().flatMap((p) => [...m.getParameter(p.name)]));
const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

const unavailable = skipIfMissing(mpiUnavailable(), process.env.MEDIX_NO_MPI === '1');

// `ranks` processes run moe-train.ts (with `args`); their weights and metrics against one process's.
async function matchesOneProcess(t: Test, ranks: number, args: string[]) {
  const out = mkdtempSync(join(tmpdir(), 'medix-mpi-moe-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  const run = await mpirun(ranks, script, [out, ...args]);
  t.equal(run.code, 0, `mpirun exits 0\n${run.output}`);
  if (run.code !== 0) return;

  const start = freshMoeModel();
  const before = flat(start);
  const single = await moeSteps(start);
  const one = flat(start);
  const all = [...Array(ranks).keys()].map(
    (r) => new Float32Array(new Uint8Array(readFileSync(join(out, `rank-${r}.f32`))).buffer),
  );
  const w0 = all[0];
  t.ok(
    all.every((w) => sameBits(w, w0)),
    `all ${ranks} ranks hold bit-identical weights`,
  );
  const moved = maxAbsDiff(one, before);
  t.ok(
    moved > 10 * WEIGHT_TOLERANCE,
    `the steps moved the weights beyond the tolerance (max ${moved.toExponential(2)})`,
  );
  for (const name of ['model.layers.0.mlp.gate.weight', 'model.layers.1.mlp.experts.gate_up_proj']) {
    const p = start.parameters().findIndex((q) => q.name === name);
    const at = start
      .parameters()
      .slice(0, p)
      .reduce((n, q) => n + q.numel, 0);
    const numel = start.parameters()[p].numel;
    const d = maxAbsDiff(one.subarray(at, at + numel), before.subarray(at, at + numel));
    t.ok(d > 10 * WEIGHT_TOLERANCE, `${name} moved (max ${d.toExponential(2)})`);
  }
  const diff = maxAbsDiff(w0, one);
  t.ok(diff <= WEIGHT_TOLERANCE, `weights within ${WEIGHT_TOLERANCE} of one process (max ${diff.toExponential(2)})`);

  const { size, metrics } = JSON.parse(readFileSync(join(out, 'rank-0.json'), 'utf8'));
  t.equal(size, ranks);
  t.equal(metrics.length, STEPS);
  for (let i = 0; i < STEPS; i++) {
    const [a, b] = [single[i], metrics[i]];
    for (const key of ['loss', 'moe_aux_loss', 'grad_norm'] as const) {
      const [x, y] = [a[key] as number, b[key] as number];
      t.ok(Math.abs(x - y) <= 1e-5 * Math.abs(x), `step ${i + 1}: ${key} ${y} = ${x} (one process)`);
    }
    t.equal(b.moe_dropped_tokens, 0, `step ${i + 1}: no token dropped`);
    // The routing of the first step sees identical weights: the same picks, summed over the ranks.
    if (i === 0)
      for (const k of [0, 1]) {
        const key = `moe_layer${k}_tokens_per_expert` as const;
        t.same(b[key], a[key], `layer ${k}: tokens per expert`);
      }
  }
}

t.test('MoE training on two ranks matches one process', unavailable, (t) => matchesOneProcess(t, 2, []));
// Six sequences over four ranks in micro-batches of one: ranks 2 and 3 have one sequence to ranks 0 and
// 1's two, so they run an empty pass each step, which must add no load-balancing gradient.
t.test('MoE training fully sharded over four ranks (two run empty passes) matches one process', unavailable, (t) =>
  matchesOneProcess(t, 4, ['full-shard']),
);
