// The ops of the Qwen3-VL vision tower one at a time: LayerNorm with bias, GELU (tanh and erf), the
// 2D vision rotary, the interpolated position table and attention without the causal mask. Each
// forward is compared with a float64 formula written here, each backward with central differences.
import t from 'tap';

import { attentionBackward, attentionForward } from '../../src/engine/attention.js';
import {
  geluBackward,
  geluForward,
  layernormBackward,
  layernormForward,
  visionPosEmbedBackward,
  visionPosEmbedForward,
  visionRopeBackward,
  visionRopeForward,
} from '../../src/engine/vision.js';
import { assertClose, dot, gradcheck, randn, rng } from '../helpers/numeric.js';

// Step 1e-2 on O(1) inputs: truncation ~h^2 |L'''| / 6 and float32 noise ~ sqrt(n) 6e-8 / 2h on the
// quotient, both below 1e-4 at these sizes.
const fd = { eps: 1e-2, atol: 3e-4, rtol: 5e-3 };

t.test('layernorm: forward is the float64 formula, backward matches finite differences', async (t) => {
  const r = rng(1);
  const rows = 6,
    dim = 40,
    eps = 1e-6;
  const x = randn(rows * dim, r, -2, 3);
  const w = randn(dim, r, 0.5, 1.5);
  const b = randn(dim, r);
  const { out, mean, rstd } = layernormForward(x, w, b, { rows, dim, eps });
  const ref = new Float64Array(rows * dim);
  for (let i = 0; i < rows; i++) {
    const row = Array.from(x.subarray(i * dim, (i + 1) * dim));
    const mu = row.reduce((s, v) => s + v, 0) / dim;
    const v = row.reduce((s, e) => s + (e - mu) ** 2, 0) / dim;
    for (let k = 0; k < dim; k++) ref[i * dim + k] = ((row[k] - mu) / Math.sqrt(v + eps)) * w[k] + b[k];
  }
  assertClose(t, out, ref, 1e-6, 1e-6, 'out');
  const probe = randn(rows * dim, r);
  const g = layernormBackward(probe, x, w, mean, rstd, { rows, dim });
  const loss = () => dot(layernormForward(x, w, b, { rows, dim, eps }).out, probe);
  for (const [name, param, grad] of [
    ['x', x, g.dx],
    ['w', w, g.dw],
    ['b', b, g.db],
  ] as const) {
    const res = gradcheck({ param, grad, loss, ...fd });
    t.ok(res.worst <= 1, `d${name} (worst ${res.worst.toFixed(3)} of ${res.checked})`);
  }
});

t.test('gelu: both forms match their formulas and their derivatives', async (t) => {
  const r = rng(2);
  const x = randn(200, r, -5, 5);
  const erf = (z: number): number => {
    // Abramowitz-Stegun 7.1.26 is too coarse; integrate exp(-s^2) by Simpson's rule instead.
    const n = 2000,
      h = z / n;
    let s = 1 + Math.exp(-z * z);
    for (let i = 1; i < n; i++) s += (i % 2 ? 4 : 2) * Math.exp(-((i * h) ** 2));
    return ((2 / Math.sqrt(Math.PI)) * (s * h)) / 3;
  };
  const formulas = {
    tanh: (v: number) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))),
    erf: (v: number) => 0.5 * v * (1 + erf(v / Math.SQRT2)),
  };
  for (const kind of ['tanh', 'erf'] as const) {
    assertClose(t, geluForward(x, kind), Array.from(x, formulas[kind]), 1e-6, 1e-6, `${kind}: forward`);
    const probe = randn(x.length, r);
    const res = gradcheck({
      param: x,
      grad: geluBackward(probe, x, kind),
      loss: () => dot(geluForward(x, kind), probe),
      ...fd,
    });
    t.ok(res.worst <= 1, `${kind}: backward (worst ${res.worst.toFixed(3)})`);
  }
});

t.test('vision rope rotates pairs (j, j + D/2) by row and column angles; backward is its transpose', async (t) => {
  const r = rng(3);
  const T = 5,
    heads = 2,
    headDim = 16,
    theta = 10000;
  const coords = Int32Array.from([0, 0, 0, 3, 2, 1, 7, 5, 1, 6]);
  const x = randn(T * heads * headDim, r);
  const out = visionRopeForward(x, coords, { T, heads, headDim, theta });
  const ref = new Float64Array(x.length);
  const half = headDim / 2,
    q = headDim / 4;
  for (let p = 0; p < T; p++)
    for (let h = 0; h < heads; h++)
      for (let j = 0; j < half; j++) {
        const f = theta ** (-(2 * (j % q)) / half);
        const angle = coords[2 * p + (j < q ? 0 : 1)] * f;
        const o = (p * heads + h) * headDim;
        ref[o + j] = x[o + j] * Math.cos(angle) - x[o + j + half] * Math.sin(angle);
        ref[o + j + half] = x[o + j + half] * Math.cos(angle) + x[o + j] * Math.sin(angle);
      }
  assertClose(t, out, ref, 1e-6, 1e-5, 'forward');
  const probe = randn(x.length, r);
  const res = gradcheck({
    param: x,
    grad: visionRopeBackward(probe, coords, { T, heads, headDim, theta }),
    loss: () => dot(visionRopeForward(x, coords, { T, heads, headDim, theta }), probe),
    ...fd,
  });
  t.ok(res.worst <= 1, `backward (worst ${res.worst.toFixed(3)})`);
});

t.test('position table: corners copy table corners, rows follow merge-block order, backward scatters', async (t) => {
  const r = rng(4);
  const side = 4,
    dim = 3,
    merge = 2;
  const table = randn(side * side * dim, r);
  // A 4x6 grid: patch (row, col) samples the table at (row, col * 3/5).
  const grids = Int32Array.from([1, 4, 6]);
  const o = { merge, side, dim };
  const out = visionPosEmbedForward(table, grids, o);
  const ref = new Float64Array(24 * dim);
  let p = 0;
  for (let br = 0; br < 2; br++)
    for (let bc = 0; bc < 3; bc++)
      for (let ir = 0; ir < 2; ir++)
        for (let ic = 0; ic < 2; ic++, p++) {
          const y = br * 2 + ir,
            xx = ((bc * 2 + ic) * (side - 1)) / 5;
          const x0 = Math.floor(xx),
            x1 = Math.min(x0 + 1, side - 1),
            dx = xx - x0;
          for (let k = 0; k < dim; k++)
            ref[p * dim + k] = (1 - dx) * table[(y * side + x0) * dim + k] + dx * table[(y * side + x1) * dim + k];
        }
  assertClose(t, out, ref, 1e-6, 1e-5, 'forward');
  t.same(Array.from(out.subarray(0, dim)), Array.from(table.subarray(0, dim)), 'first patch is table row 0');
  const probe = randn(out.length, r);
  const res = gradcheck({
    param: table,
    grad: visionPosEmbedBackward(probe, grids, o),
    loss: () => dot(visionPosEmbedForward(table, grids, o), probe),
    ...fd,
  });
  t.ok(res.worst <= 1, `backward (worst ${res.worst.toFixed(3)})`);
  t.throws(() => visionPosEmbedForward(table, Int32Array.from([1, 3, 4]), o), /grid 0 \(1, 3, 4\) must have/);
});

t.test('attention with causal: false sees its whole segment and nothing across segments', async (t) => {
  const r = rng(5);
  const heads = 2,
    headDim = 4,
    T = 7;
  const cu = Int32Array.from([0, 3, 7]);
  const q = randn(T * heads * headDim, r),
    k = randn(T * heads * headDim, r),
    v = randn(T * heads * headDim, r);
  const o = { heads, kvHeads: heads, headDim, causal: false };
  const { out, lse } = attentionForward(q, k, v, cu, o);
  const ref = new Float64Array(out.length);
  for (let s = 0; s < 2; s++)
    for (let i = cu[s]; i < cu[s + 1]; i++)
      for (let h = 0; h < heads; h++) {
        const sc: number[] = [];
        for (let j = cu[s]; j < cu[s + 1]; j++) {
          let d = 0;
          for (let c = 0; c < headDim; c++) d += q[(i * heads + h) * headDim + c] * k[(j * heads + h) * headDim + c];
          sc.push(d / Math.sqrt(headDim));
        }
        const m = Math.max(...sc),
          z = sc.reduce((a, e) => a + Math.exp(e - m), 0);
        for (let j = cu[s]; j < cu[s + 1]; j++)
          for (let c = 0; c < headDim; c++)
            ref[(i * heads + h) * headDim + c] += (Math.exp(sc[j - cu[s]] - m) / z) * v[(j * heads + h) * headDim + c];
      }
  assertClose(t, out, ref, 1e-6, 1e-5, 'forward');
  const probe = randn(out.length, r);
  const g = attentionBackward(probe, out, lse, q, k, v, cu, o);
  const loss = () => dot(attentionForward(q, k, v, cu, o).out, probe);
  for (const [name, param, grad] of [
    ['q', q, g.dq],
    ['k', k, g.dk],
    ['v', v, g.dv],
  ] as const) {
    const res = gradcheck({ param, grad, loss, ...fd });
    t.ok(res.worst <= 1, `d${name} (worst ${res.worst.toFixed(3)})`);
  }
});
