// KL estimators: each value against its formula written out, each derivative against finite
// differences away from the clamps and kinks, the clamps of low_var_kl, and klValues (the per-token
// KL of KL in the reward) with its bad input.
import t from 'tap';

import { KL_ESTIMATORS, type KlEstimator, klEstimator, klValues } from '../../src/rl/kl-estimator.js';

const klValue = (e: KlEstimator, x: number) => klEstimator(e).value(x);
const klGradient = (e: KlEstimator, x: number) => klEstimator(e).dlogp(x);
import { assertClose, randn, rng } from '../helpers/numeric.js';

/** The estimates from their definitions, at x = logp − refLogp (k3 with its ±20 / ±10 clamps). */
function formula(e: KlEstimator, x: number): number {
  switch (e) {
    case 'none':
      return 0;
    case 'k1':
      return x;
    case 'abs':
      return Math.abs(x);
    case 'mse':
      return (x * x) / 2;
    case 'low_var_kl': {
      const u = Math.min(Math.max(-x, -20), 20);
      return Math.min(Math.max(Math.exp(u) - u - 1, -10), 10);
    }
  }
}

t.test('every estimator is its formula', async (t) => {
  const xs = [-30, -5, -1.5, -0.3, 0, 0.2, 1, 2.5, 8, 25];
  for (const e of KL_ESTIMATORS) {
    t.same(
      xs.map((x) => klValue(e, x)),
      xs.map((x) => formula(e, x)),
      `${e} values`,
    );
  }
  t.equal(klValue('low_var_kl', -30), 10, 'low_var_kl is capped at 10');
  t.ok(klValue('low_var_kl', 0.7) > 0 && klValue('low_var_kl', -0.7) > 0, 'k3 is non-negative');
});

t.test('derivatives agree with central differences', async (t) => {
  // Smooth away from 0 (abs) and the clamps; h = 1e-5 in double gives ~1e-9 relative error.
  const xs = [-2.1, -0.8, -0.05, 0.3, 1.7, 2.2];
  const h = 1e-5;
  for (const e of KL_ESTIMATORS)
    for (const x of xs) {
      const fd = (klValue(e, x + h) - klValue(e, x - h)) / (2 * h);
      assertClose(t, [klGradient(e, x)], [fd], 1e-8, 1e-6, `${e} at ${x}`);
    }
  // Under a clamp the value is constant and so the gradient is 0.
  t.equal(klGradient('low_var_kl', -5), 0, 'value clamp (k3(−5) = e^5 − 6 > 10) stops the gradient');
  t.equal(klGradient('low_var_kl', 25), 0, 'log-ratio clamp stops the gradient');
});

t.test('klValues gives the per-token estimate, in float32', async (t) => {
  const r = rng(500);
  const logp = randn(40, r, -3, -0.05);
  // Log-ratios ±50 on some tokens reach the clamps of low_var_kl.
  const ref = logp.map((v, i) => (i % 7 === 0 ? v + (i % 2 ? 50 : -50) : v + 0.5 * (2 * r() - 1)));
  for (const e of KL_ESTIMATORS) {
    const got = klValues(logp, ref, e);
    t.type(got, Float32Array);
    const want = Array.from(logp, (lp, i) => Math.fround(formula(e, lp - ref[i])));
    t.same(Array.from(got), want, `klValues ${e}`);
  }
  t.throws(() => klValues(logp, ref.slice(1), 'k1'), /klValues: refLogp must have length 40 \(logp.length\), got 39/);
  t.throws(
    () => klValues(logp, ref, 'kl' as KlEstimator),
    /klValues: option 'kl' must be one of 'none', 'k1', 'abs', 'mse', 'low_var_kl', got 'kl'/,
  );
  const nan = logp.slice();
  nan[2] = NaN;
  t.throws(() => klValues(nan, ref, 'k1'), /klValues: logp contains a non-finite value \(NaN\) at index 2/);
});
