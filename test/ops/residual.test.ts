// Residual add: out = a + b, and dst += src, which is how backward passes a gradient through a sum.
import t from 'tap';

import { addForward, addInplace } from '../../src/engine/layers.js';
import { dot, gradcheck, randn, rng, sameBits } from '../helpers/numeric.js';

t.test('addForward and addInplace are float32 elementwise sums', async (t) => {
  const r = rng(1);
  // 100000 elements spread over both threads.
  for (const n of [5, 100000]) {
    const a = randn(n, r),
      b = randn(n, r);
    // One float32 addition per element: exactly the float32 rounding of the float64 sum.
    const expected = Float32Array.from(a, (v, i) => v + b[i]);
    t.ok(sameBits(addForward(a, b), expected), `addForward n=${n}`);
    const dst = a.slice();
    t.equal(addInplace(dst, b), dst, 'addInplace returns dst');
    t.ok(sameBits(dst, expected), `addInplace n=${n}`);
  }
});

t.test('finite differences agree with the gradient of a sum (dout passed to both inputs)', async (t) => {
  const r = rng(2);
  const n = 20;
  const a = randn(n, r),
    b = randn(n, r);
  const probe = randn(n, r);
  // Backward of out = a + b: da += dout and db += dout, each done with addInplace into zeros.
  const grad = addInplace(new Float32Array(n), probe);
  const loss = () => dot(addForward(a, b), probe);
  // Linear: only the float32 rounding of one output, 6e-8 / (2h) = 3e-6 with h = 1e-2.
  for (const [name, param] of [
    ['a', a],
    ['b', b],
  ] as const) {
    const res = gradcheck({ param, grad, loss, eps: 1e-2, atol: 2e-5, rtol: 1e-4 });
    t.ok(res.worst <= 1, `d${name} (worst ${res.worst.toFixed(3)} at ${res.index} of ${res.checked})`);
  }
});

t.test('bad input throws a clear error', async (t) => {
  const a = new Float32Array(3);
  t.throws(() => addForward(a, new Float32Array(2)), /addForward: b must have length 3 \(a.length\), got 2/);
  t.throws(() => addForward(new Float64Array(3) as unknown as Float32Array, a), /addForward: a must be a Float32Array/);
  t.throws(
    () => addForward(a, Float32Array.from([0, NaN, 0])),
    /addForward: b contains a non-finite value \(nan\) at index 1/,
  );
  t.throws(() => addInplace(a, new Float32Array(4)), /addInplace: src must have length 3 \(dst.length\), got 4/);
  t.throws(
    () => addInplace(a, Float32Array.from([0, 0, NaN])),
    /addInplace: src contains a non-finite value \(nan\) at index 2/,
  );
});
