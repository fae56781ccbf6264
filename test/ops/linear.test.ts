// Linear layer in Hugging Face layout, y = x W^T + b with W [out, in]: forward, the three
// gradients, finite differences, determinism, bad input.
import t from 'tap';

import { linearBackward, linearForward } from '../../src/engine/layers.js';
import { assertClose, dot, gradcheck, randn, rng, sameBits } from '../helpers/numeric.js';

// Float64 references.
function refForward(x: Float32Array, W: Float32Array, b: Float32Array | null, T: number, nin: number, nout: number) {
  const y = new Float64Array(T * nout);
  for (let t = 0; t < T; t++)
    for (let o = 0; o < nout; o++) {
      let s = b ? b[o] : 0;
      for (let k = 0; k < nin; k++) s += x[t * nin + k] * W[o * nin + k];
      y[t * nout + o] = s;
    }
  return y;
}
function refBackward(dy: Float32Array, x: Float32Array, W: Float32Array, T: number, nin: number, nout: number) {
  const dx = new Float64Array(T * nin);
  const dW = new Float64Array(nout * nin);
  const db = new Float64Array(nout);
  for (let t = 0; t < T; t++)
    for (let o = 0; o < nout; o++) {
      const g = dy[t * nout + o];
      db[o] += g;
      for (let k = 0; k < nin; k++) {
        dx[t * nin + k] += g * W[o * nin + k];
        dW[o * nin + k] += g * x[t * nin + k];
      }
    }
  return { dx, dW, db };
}

// A float32 sum of K terms is within K * 2^-24 * sum|terms| of the exact value whatever the order
// of summation (so for any GEMM kernel); inputs in (-1, 1) make every term < 1, so sum|terms| < K.
const tol = (K: number) => (K * K) / 2 ** 24;

t.test('forward and backward match the float64 reference', async (t) => {
  const r = rng(1);
  for (const [T, nin, nout] of [
    [1, 3, 2],
    [5, 24, 40],
    [33, 48, 17],
  ]) {
    const x = randn(T * nin, r);
    const W = randn(nout * nin, r);
    const b = randn(nout, r);
    const o = { T, in: nin, out: nout };
    const shape = `${T}x${nin}->${nout}`;
    assertClose(
      t,
      linearForward(x, W, null, o),
      refForward(x, W, null, T, nin, nout),
      tol(nin),
      0,
      `y, no bias, ${shape}`,
    );
    assertClose(t, linearForward(x, W, b, o), refForward(x, W, b, T, nin, nout), tol(nin + 1), 0, `y + b, ${shape}`);

    const dy = randn(T * nout, r);
    const g = linearBackward(dy, x, W, { ...o, bias: true });
    const ref = refBackward(dy, x, W, T, nin, nout);
    assertClose(t, g.dx, ref.dx, tol(nout), 0, `dx ${shape}`);
    assertClose(t, g.dW, ref.dW, tol(T), 0, `dW ${shape}`);
    assertClose(t, g.db!, ref.db, tol(T), 0, `db ${shape}`);
    t.equal(linearBackward(dy, x, W, o).db, undefined, 'no db without bias');
  }
});

t.test('finite differences agree with backward for x, W and b', async (t) => {
  const r = rng(2);
  const T = 4,
    nin = 6,
    nout = 5;
  const o = { T, in: nin, out: nout };
  const x = randn(T * nin, r);
  const W = randn(nout * nin, r);
  const b = randn(nout, r);
  const probe = randn(T * nout, r);
  const g = linearBackward(probe, x, W, { ...o, bias: true });
  const loss = () => dot(linearForward(x, W, b, o), probe);
  // The loss is linear in each input, so finite differences are exact but for the float32 rounding
  // of the outputs: ~ sqrt(nout) * 6e-8 / (2h) ≈ 1e-5 with h = 1e-2.
  for (const [name, param, grad] of [
    ['x', x, g.dx],
    ['W', W, g.dW],
    ['b', b, g.db!],
  ] as const) {
    const res = gradcheck({ param, grad, loss, eps: 1e-2, atol: 1e-4, rtol: 1e-3 });
    t.ok(res.worst <= 1, `d${name} (worst ${res.worst.toFixed(3)} at ${res.index} of ${res.checked})`);
  }
});

t.test('forward and backward are deterministic', async (t) => {
  const r = rng(3);
  const T = 64,
    nin = 96,
    nout = 80;
  const o = { T, in: nin, out: nout };
  const x = randn(T * nin, r);
  const W = randn(nout * nin, r);
  const b = randn(nout, r);
  const dy = randn(T * nout, r);
  t.ok(sameBits(linearForward(x, W, b, o), linearForward(x, W, b, o)), 'forward bit-identical');
  const g1 = linearBackward(dy, x, W, { ...o, bias: true });
  const g2 = linearBackward(dy, x, W, { ...o, bias: true });
  t.ok(sameBits(g1.dx, g2.dx) && sameBits(g1.dW, g2.dW) && sameBits(g1.db!, g2.db!), 'backward bit-identical');
});

t.test('bad input throws a clear error', async (t) => {
  const o = { T: 2, in: 3, out: 4 };
  const x = new Float32Array(6);
  const W = new Float32Array(12);
  t.throws(
    () => linearForward([0, 0, 0, 0, 0, 0] as unknown as Float32Array, W, null, o),
    /linearForward: x must be a Float32Array \(got a plain Array\)/,
  );
  t.throws(
    () => linearForward(x, new Float32Array(3 * 4 + 1), null, o),
    /linearForward: W must have length 12 \(out\*in\), got 13/,
  );
  t.throws(() => linearForward(x, W, new Float32Array(3), o), /linearForward: b must have length 4 \(out\), got 3/);
  t.throws(() => linearForward(x, W, null, { ...o, in: 2.5 }), /linearForward: option 'in' must be an integer/);
  const nanW = new Float32Array(12);
  nanW[10] = NaN;
  t.throws(() => linearForward(x, nanW, null, o), /linearForward: W contains a non-finite value \(nan\) at index 10/);
  t.throws(
    () => linearBackward(new Float32Array(7), x, W, o),
    /linearBackward: dy must have length 8 \(T\*out\), got 7/,
  );
  const nanDy = new Float32Array(8);
  nanDy[3] = NaN;
  t.throws(() => linearBackward(nanDy, x, W, o), /linearBackward: dy contains a non-finite value \(nan\) at index 3/);
  t.throws(
    () => linearBackward(new Float32Array(8), x, W, { ...o, bias: 1 as unknown as boolean }),
    /linearBackward: option 'bias' must be a boolean/,
  );
});
