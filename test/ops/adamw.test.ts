// AdamW over a flat buffer against a float64 reference over several steps (weight decay on and off),
// the sum of squares (value, thread-count independence, non-finite detection), scaling, bad input.
import t from 'tap';

import { ADAMW_DEFAULTS } from '../../src/engine/adamw-defaults.js';
import { adamwStep, scaleInPlace, sumSquares, type AdamWStepOptions } from '../../src/engine/adamw.js';
import { setThreads, threads } from '../../src/engine/system.js';
import { assertClose, randn, rng } from '../helpers/numeric.js';

interface Hyper {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

/**
 * Float64 AdamW step (torch.optim.AdamW): p *= 1 - lr wd (when decay); m = b1 m + (1 - b1) g;
 * v = b2 v + (1 - b2) g^2; p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
 */
function refStep(
  p: Float64Array,
  g: Float32Array,
  m: Float64Array,
  v: Float64Array,
  h: Hyper,
  step: number,
  decay: boolean,
) {
  for (let i = 0; i < p.length; i++) {
    if (decay) p[i] *= 1 - h.lr * h.weightDecay;
    m[i] = h.beta1 * m[i] + (1 - h.beta1) * g[i];
    v[i] = h.beta2 * v[i] + (1 - h.beta2) * g[i] * g[i];
    const mHat = m[i] / (1 - h.beta1 ** step);
    const vHat = v[i] / (1 - h.beta2 ** step);
    p[i] -= (h.lr * mHat) / (Math.sqrt(vHat) + h.eps);
  }
}

t.test('several steps match the float64 reference, with and without weight decay', async (t) => {
  const n = 1000;
  // Hyper-parameters exactly representable in float32 (the native config holds them as float32), so
  // the reference sees the same values. eps is large enough to matter for the small gradients.
  const h: Hyper = { lr: 2 ** -6, beta1: 0.875, beta2: 0.9921875, eps: 2 ** -10, weightDecay: 0.25 };
  for (const decay of [true, false]) {
    const r = rng(decay ? 1 : 2);
    const p = randn(n, r);
    const m = new Float32Array(n);
    const v = new Float32Array(n);
    const p64 = Float64Array.from(p),
      m64 = new Float64Array(n),
      v64 = new Float64Array(n);
    for (let step = 1; step <= 6; step++) {
      // Gradients of mixed scales, some tiny (where eps dominates the denominator).
      const g = randn(n, r).map((x, i) => (i % 5 === 0 ? x * 1e-4 : x));
      const o: AdamWStepOptions = { ...h, step, decay };
      adamwStep(p, g, m, v, o);
      refStep(p64, g, m64, v64, h, step, decay);
    }
    // Each step moves p by at most ~lr and rounds p, m and v to float32 (2^-24 relative each), so after
    // 6 steps the float32 state is within ~6 * 2^-24 * (|x| + lr) of float64 plus the rounding carried
    // through the update's quotient (~1e-7 relative of a step of size lr).
    const what = decay ? 'decay' : 'no decay';
    assertClose(t, p, p64, 1e-6, 1e-6, `p after 6 steps (${what})`);
    // m mixes gradients of both signs: its rounding is relative to the terms (|g| < 1), not to m.
    assertClose(t, m, m64, 6 * 2 ** -23, 0, `m after 6 steps (${what})`);
    assertClose(t, v, v64, 1e-12, 1e-6, `v after 6 steps (${what})`);
  }
});

t.test('weight decay shrinks the parameters only when enabled', async (t) => {
  // With g = 0, m and v stay 0 and the Adam update is 0: only the decoupled decay moves p.
  const p = Float32Array.of(1, -2, 0.5);
  const zeros = () => new Float32Array(3);
  const o = { lr: 0.1, weightDecay: 0.5, step: 1 };
  const decayed = p.slice();
  adamwStep(decayed, zeros(), zeros(), zeros(), { ...o, decay: true });
  assertClose(
    t,
    decayed,
    p.map((x) => x * (1 - 0.1 * 0.5)),
    1e-7,
    1e-6,
    'p *= 1 - lr wd',
  );
  const kept = p.slice();
  adamwStep(kept, zeros(), zeros(), zeros(), { ...o, decay: false });
  t.same(Array.from(kept), Array.from(p), 'decay: false leaves p unchanged');
});

t.test('sumSquares: float64-exact value, independent of the thread count, detects non-finite values', async (t) => {
  const g = randn(1_000_003, rng(3), -3, 3);
  let ref = 0;
  for (const x of g) ref += x * x;
  const original = threads();
  t.teardown(() => setThreads(original));
  setThreads(1);
  const one = sumSquares(g);
  setThreads(2);
  const two = sumSquares(g);
  setThreads(3);
  const three = sumSquares(g);
  // Sums of 1e6 non-negative doubles: relative error ~1e6 * 2^-53 ≈ 1e-10 at worst, for either order.
  assertClose(t, [one], [ref], 0, 1e-10, 'value');
  t.ok(one === two && two === three, `bit-identical for 1, 2 and 3 threads (${one}, ${two}, ${three})`);

  const withInf = g.slice();
  withInf[123_456] = -Infinity;
  t.equal(sumSquares(withInf), Infinity, '-Inf gives +Inf');
  const withNaN = g.slice();
  withNaN[999_999] = NaN;
  t.ok(Number.isNaN(sumSquares(withNaN)), 'NaN gives NaN');
  t.ok(
    Number.isFinite(sumSquares(Float32Array.of(3e38, -3e38))),
    'the largest finite floats do not overflow the double sum',
  );
  t.equal(sumSquares(new Float32Array(0)), 0, 'empty: 0');
});

t.test('scaleInPlace multiplies every element', async (t) => {
  // s = 0.375 is exact in float32, so the float32 product is the exact product rounded once: the same
  // as rounding the double product.
  const g = randn(50_001, rng(4));
  const want = g.map((x) => x * 0.375);
  scaleInPlace(g, 0.375);
  t.ok(
    g.every((x, i) => x === want[i]),
    'g *= s in every element',
  );
});

t.test('bad input throws a clear error', async (t) => {
  const a = () => new Float32Array(4);
  const o: AdamWStepOptions = { lr: 1e-3, step: 1 };
  t.throws(
    () => adamwStep(a(), new Float32Array(3), a(), a(), o),
    /adamwStep: g must have length 4 \(p.length\), got 3/,
  );
  t.throws(
    () => adamwStep(a(), a(), a(), [0, 0, 0, 0] as unknown as Float32Array, o),
    /adamwStep: v must be a Float32Array \(got a plain Array\)/,
  );
  const nanG = a();
  nanG[2] = NaN;
  t.throws(() => adamwStep(a(), nanG, a(), a(), o), /adamwStep: g contains a non-finite value \(nan\) at index 2/);
  const negV = a();
  negV[1] = -1;
  t.throws(() => adamwStep(a(), a(), a(), negV, o), /adamwStep: v\[1\] is negative/);
  t.throws(
    () => adamwStep(a(), a(), a(), a(), { step: 1 } as AdamWStepOptions),
    /adamwStep: option 'lr' must be a number/,
  );
  t.throws(
    () => adamwStep(a(), a(), a(), a(), { ...o, step: 0 }),
    /adamwStep: option 'step' must be an integer in \[1,/,
  );
  t.throws(() => adamwStep(a(), a(), a(), a(), { ...o, step: 1.5 }), /adamwStep: option 'step' must be an integer/);
  t.throws(
    () => adamwStep(a(), a(), a(), a(), { ...o, beta1: 1 }),
    /adamwStep: option 'beta1' must be in \[0, 1\), got 1/,
  );
  t.throws(() => adamwStep(a(), a(), a(), a(), { ...o, eps: 0 }), /adamwStep: option 'eps' must be > 0/);
  t.throws(() => adamwStep(a(), a(), a(), a(), { ...o, lr: -1 }), /adamwStep: option 'lr' must be >= 0/);
  t.throws(
    () => adamwStep(a(), a(), a(), a(), { ...o, decay: 'yes' as unknown as boolean }),
    /adamwStep: option 'decay' must be a boolean/,
  );
  t.throws(() => sumSquares(new Float64Array(2) as unknown as Float32Array), /sumSquares: g must be a Float32Array/);
  t.throws(() => scaleInPlace(a(), NaN), /scaleInPlace: option 's' must be finite/);
});

t.test('the native defaults are ADAMW_DEFAULTS: a step without them equals one that gives them', async (t) => {
  const fresh = () => [randn(64, rng(1)), randn(64, rng(2)), new Float32Array(64), new Float32Array(64)];
  const [p1, g1, m1, v1] = fresh();
  const [p2, g2, m2, v2] = fresh();
  adamwStep(p1, g1, m1, v1, { lr: 0.1, step: 1 });
  adamwStep(p2, g2, m2, v2, { lr: 0.1, step: 1, ...ADAMW_DEFAULTS });
  t.same([p1, m1, v1], [p2, m2, v2]);
  const [p3, g3, m3, v3] = fresh();
  adamwStep(p3, g3, m3, v3, { lr: 0.1, step: 1, ...ADAMW_DEFAULTS, beta2: 0.5 });
  t.notSame(v3, v1, 'and a different value changes the step');
});
