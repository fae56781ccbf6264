// RMSNorm as Qwen3 uses it, both for the hidden states (dim = hidden) and for the per-head q/k
// norm (rows = tokens*heads, dim = head_dim): forward, backward, finite differences, determinism.
import t from 'tap';

import { rmsnormBackward, rmsnormForward } from '../../src/engine/layers.js';
import { assertClose, dot, gradcheck, randn, rng, sameBits } from '../helpers/numeric.js';

// Float64 references: rstd = 1/sqrt(mean(x^2) + eps), out = w * x * rstd, and its gradients
//   dx = rstd * g - rstd^3 * x * sum(g * x) / dim  with g = dout * w,   dw = sum_rows dout * x * rstd.
function refForward(x: Float32Array, w: Float32Array, rows: number, dim: number, eps: number) {
  const out = new Float64Array(rows * dim);
  const rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
    rstd[r] = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[r * dim + i] = w[i] * x[r * dim + i] * rstd[r];
  }
  return { out, rstd };
}
function refBackward(dout: Float32Array, x: Float32Array, w: Float32Array, rows: number, dim: number, eps: number) {
  const { rstd } = refForward(x, w, rows, dim, eps);
  const dx = new Float64Array(rows * dim);
  const dw = new Float64Array(dim);
  for (let r = 0; r < rows; r++) {
    let gx = 0;
    for (let i = 0; i < dim; i++) gx += dout[r * dim + i] * w[i] * x[r * dim + i];
    for (let i = 0; i < dim; i++) {
      const k = r * dim + i;
      dx[k] = rstd[r] * dout[k] * w[i] - rstd[r] ** 3 * x[k] * (gx / dim);
      dw[i] += dout[k] * x[k] * rstd[r];
    }
  }
  return { dx, dw };
}

// Hidden-state norm, per-head q/k norm (rows = tokens*heads), and enough rows (300) for the dw
// reduction to use many fixed chunks and both threads.
const shapes = [
  { name: 'hidden', rows: 7, dim: 64 },
  { name: 'per-head q/k', rows: 5 * 4, dim: 8 },
  { name: 'many rows', rows: 300, dim: 48 },
];
const eps = 1e-6;

t.test('forward and backward match the float64 reference', async (t) => {
  const r = rng(1);
  for (const { name, rows, dim } of shapes) {
    const x = randn(rows * dim, r);
    const w = randn(dim, r, 0.5, 1.5);
    const { out, rstd } = rmsnormForward(x, w, { rows, dim, eps });
    const ref = refForward(x, w, rows, dim, eps);
    // Forward is a handful of float32 roundings per element (mean, sqrt, two products) on top of a
    // sum of squares, each relative: 1e-6 relative is a few ulps.
    assertClose(t, rstd, ref.rstd, 0, 1e-6, `${name}: rstd`);
    assertClose(t, out, ref.out, 1e-7, 1e-6, `${name}: out`);

    const dout = randn(rows * dim, r);
    const { dx, dw } = rmsnormBackward(dout, x, w, rstd, { rows, dim });
    const g = refBackward(dout, x, w, rows, dim, eps);
    // dx subtracts two O(1) terms, so its error is absolute, a few float32 ulps (6e-8) of O(1).
    assertClose(t, dx, g.dx, 1e-6, 1e-5, `${name}: dx`);
    // dw is a float32 sum over `rows` O(1) terms: rounding errors random-walk to about
    // sqrt(rows) * 2^-24 * |partial sum| ≈ 1e-6 for 300 rows; 5e-6 leaves a margin.
    assertClose(t, dw, g.dw, 5e-6, 1e-5, `${name}: dw`);
  }
});

t.test('a zero row normalises to zero with rstd = 1/sqrt(eps)', async (t) => {
  const dim = 4;
  const x = Float32Array.from([0, 0, 0, 0, 1, -2, 3, -4]);
  const w = Float32Array.from([1, 2, 3, 4]);
  const { out, rstd } = rmsnormForward(x, w, { rows: 2, dim, eps: 1e-2 });
  assertClose(t, rstd, [10, 1 / Math.sqrt(30 / 4 + 1e-2)], 0, 1e-6, 'rstd');
  t.same(Array.from(out.subarray(0, 4)), [0, 0, 0, 0], 'zero row');
});

t.test('finite differences agree with backward for x and w', async (t) => {
  const r = rng(2);
  for (const { name, rows, dim } of shapes.slice(0, 2)) {
    const x = randn(rows * dim, r);
    const w = randn(dim, r, 0.5, 1.5);
    const probe = randn(rows * dim, r);
    const { rstd } = rmsnormForward(x, w, { rows, dim, eps });
    const { dx, dw } = rmsnormBackward(probe, x, w, rstd, { rows, dim });
    const loss = () => dot(rmsnormForward(x, w, { rows, dim, eps }).out, probe);
    // Step 1e-2 on O(1) inputs: truncation error ~ h^2 |L'''| / 6 ≈ 2e-5, and the float32 outputs
    // put ~ sqrt(dim) * 6e-8 / (2h) ≈ 3e-5 of noise on the quotient (w touches all rows: ~5e-5).
    for (const [label, param, grad] of [
      ['x', x, dx],
      ['w', w, dw],
    ] as const) {
      const res = gradcheck({ param, grad, loss, eps: 1e-2, atol: 2e-4, rtol: 5e-3 });
      t.ok(res.worst <= 1, `${name}: d${label} (worst ${res.worst.toFixed(3)} at ${res.index} of ${res.checked})`);
    }
  }
});

t.test('forward and backward are deterministic', async (t) => {
  const r = rng(3);
  const rows = 1000,
    dim = 64;
  const x = randn(rows * dim, r);
  const w = randn(dim, r);
  const dout = randn(rows * dim, r);
  const f1 = rmsnormForward(x, w, { rows, dim, eps });
  const f2 = rmsnormForward(x, w, { rows, dim, eps });
  t.ok(sameBits(f1.out, f2.out) && sameBits(f1.rstd, f2.rstd), 'forward bit-identical');
  const b1 = rmsnormBackward(dout, x, w, f1.rstd, { rows, dim });
  const b2 = rmsnormBackward(dout, x, w, f1.rstd, { rows, dim });
  t.ok(sameBits(b1.dx, b2.dx) && sameBits(b1.dw, b2.dw), 'backward bit-identical');
});

t.test('bad input throws a clear error', async (t) => {
  const o = { rows: 2, dim: 3, eps };
  const x = new Float32Array(6);
  const w = new Float32Array(3);
  t.throws(
    () => rmsnormForward(new Float64Array(6) as unknown as Float32Array, w, o),
    /rmsnormForward: x must be a Float32Array/,
  );
  t.throws(() => rmsnormForward(x, new Float32Array(4), o), /rmsnormForward: w must have length 3 \(dim\), got 4/);
  t.throws(() => rmsnormForward(x, w, { ...o, eps: 0 }), /rmsnormForward: option 'eps' must be > 0/);
  t.throws(() => rmsnormForward(x, w, { ...o, rows: 0 }), /rmsnormForward: option 'rows' must be an integer in \[1,/);
  const nan = new Float32Array(6);
  nan[5] = NaN;
  t.throws(() => rmsnormForward(nan, w, o), /rmsnormForward: x contains a non-finite value \(nan\) at index 5/);
  const rstd = new Float32Array(2);
  t.throws(
    () => rmsnormBackward(nan, x, w, rstd, o),
    /rmsnormBackward: dout contains a non-finite value \(nan\) at index 5/,
  );
  t.throws(
    () => rmsnormBackward(x, x, w, new Float32Array(3), o),
    /rmsnormBackward: rstd must have length 2 \(rows\), got 3/,
  );
  t.throws(
    () => rmsnormBackward(x, x, w, rstd, null as unknown as typeof o),
    /rmsnormBackward: options must be an object/,
  );
});
