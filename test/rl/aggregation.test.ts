// Loss aggregation: each mode's value against its definition written as sums over sequences, the
// weights as its gradient (finite differences), global normalisers, masked-out tokens holding
// garbage, and the option checks.
import t from 'tap';

import {
  aggregate,
  aggregationWeights,
  checkAggOptions,
  LOSS_AGG_MODES,
  type LossAgg,
} from '../../src/rl/aggregation.js';
import { assertClose, randn, rng } from '../helpers/numeric.js';

/** Sequences of lengths 4, 0, 6, 3, 5 (an empty one); the last has no masked-in token. */
function batch(seed: number) {
  const r = rng(seed);
  const cuSeqlens = Int32Array.of(0, 4, 4, 10, 13, 18);
  const mask = new Float32Array(18).map(() => (r() < 0.7 ? 1 : 0));
  mask.fill(0, 13, 18);
  mask[0] = 1;
  mask[4] = 1;
  const x = randn(18, r, -2, 2);
  return { mask, cuSeqlens, x };
}

/** The definitions: per-sequence masked sums and counts, then the mode's means. */
function direct(x: Float32Array, mask: Float32Array, cu: Int32Array, agg: LossAgg, gTok = 0, gSeq = 0): number {
  const seqs: { sum: number; n: number }[] = [];
  for (let i = 0; i + 1 < cu.length; i++) {
    let sum = 0;
    let n = 0;
    for (let k = cu[i]; k < cu[i + 1]; k++) {
      sum += mask[k] * x[k];
      n += mask[k];
    }
    seqs.push({ sum, n });
  }
  const counted = seqs.filter((s) => s.n > 0);
  const tokens = counted.reduce((a, s) => a + s.n, 0);
  if (tokens === 0) return 0;
  if (agg === 'token-mean') return counted.reduce((a, s) => a + s.sum, 0) / (gTok || tokens);
  const per = counted.map((s) => (agg === 'seq-mean-token-mean' ? s.sum / s.n : s.sum));
  return per.reduce((a, v) => a + v, 0) / (gSeq || counted.length);
}

t.test('every mode is its definition, with and without global normalisers', async (t) => {
  let seed = 1;
  for (const agg of LOSS_AGG_MODES) {
    const { x, ...b } = batch(seed++);
    assertClose(t, [aggregate(x, b, { agg })], [direct(x, b.mask, b.cuSeqlens, agg)], 1e-14, 1e-13, agg);
    const o = { agg, globalTokens: 31, globalSeqs: 6 };
    assertClose(t, [aggregate(x, b, o)], [direct(x, b.mask, b.cuSeqlens, agg, 31, 6)], 1e-14, 1e-13, `${agg} global`);
  }
});

t.test('the weights are the gradient of the aggregate', async (t) => {
  // The aggregate is linear in x, so a central difference in double is exact up to rounding.
  const { x, ...b } = batch(7);
  const xs = Float64Array.from(x);
  for (const agg of LOSS_AGG_MODES) {
    const w = aggregationWeights(b, { agg });
    const fd = Array.from(xs, (_, i) => {
      const up = xs.slice();
      const down = xs.slice();
      up[i] += 0.5;
      down[i] -= 0.5;
      return aggregate(up, b, { agg }) - aggregate(down, b, { agg });
    });
    assertClose(t, w, fd, 1e-13, 1e-10, `${agg}: weights = finite differences`);
    t.ok(
      w.every((v, i) => (b.mask[i] === 0 ? v === 0 : v > 0)),
      `${agg}: masked-out tokens weigh 0`,
    );
  }
});

t.test('masked-out tokens never reach the value, whatever they hold', async (t) => {
  const { x, ...b } = batch(9);
  const garbage = x.slice();
  b.mask.forEach((m, i) => {
    if (m === 0) garbage[i] = 1e30;
  });
  for (const agg of LOSS_AGG_MODES) t.equal(aggregate(garbage, b, { agg }), aggregate(x, b, { agg }), agg);
});

t.test('an empty mask aggregates to 0', async (t) => {
  const { x, ...b } = batch(11);
  b.mask.fill(0);
  for (const agg of LOSS_AGG_MODES) {
    t.equal(aggregate(x, b, { agg }), 0, agg);
    t.ok(
      aggregationWeights(b, { agg }).every((v) => v === 0),
      `${agg}: weights 0`,
    );
  }
});

t.test('option checks name the function and the option', async (t) => {
  t.same(checkAggOptions('f', { agg: 'token-mean' }), { agg: 'token-mean', globalTokens: 0, globalSeqs: 0 });
  t.throws(() => checkAggOptions('f', {} as { agg: LossAgg }), /f: option 'agg' is required \(one of 'token-mean'/);
  t.throws(() => checkAggOptions('f', { agg: 'mean' as LossAgg }), /f: option 'agg' must be one of .*, got 'mean'/);
  t.throws(
    () => checkAggOptions('f', { agg: 'token-mean', globalTokens: -1 }),
    /f: option 'globalTokens' must be >= 0/,
  );
  t.throws(() => checkAggOptions('f', { agg: 'token-mean', globalSeqs: NaN }), /f: option 'globalSeqs' must be finite/);
});
