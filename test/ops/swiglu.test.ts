// SwiGLU gate of the Qwen3 MLP, out = silu(gate) * up: forward, gradients, finite differences,
// behaviour at large |gate|, determinism, bad input.
import t from 'tap';

import { swigluBackward, swigluForward } from '../../src/engine/layers.js';
import { assertClose, dot, gradcheck, randn, rng, sameBits } from '../helpers/numeric.js';

// Float64 references: silu(g) = g * sigmoid(g); d silu/dg = s * (1 + g * (1 - s)).
const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));
function refForward(gate: Float32Array, up: Float32Array): Float64Array {
  return Float64Array.from(gate, (g, i) => g * sigmoid(g) * up[i]);
}
function refBackward(dout: Float32Array, gate: Float32Array, up: Float32Array) {
  const dgate = new Float64Array(gate.length);
  const dup = new Float64Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i],
      s = sigmoid(g);
    dgate[i] = dout[i] * up[i] * s * (1 + g * (1 - s));
    dup[i] = dout[i] * g * s;
  }
  return { dgate, dup };
}

t.test('forward and backward match the float64 reference', async (t) => {
  const r = rng(1);
  // 40000 elements spread over both threads; gates span the whole useful range of silu.
  for (const n of [13, 40000]) {
    const gate = randn(n, r, -8, 8);
    const up = randn(n, r, -2, 2);
    const dout = randn(n, r);
    // Each output is a few float32 operations (exp, division, products), each within an ulp:
    // 1e-6 relative. The absolute floor 1e-7 covers outputs that are themselves near zero
    // (silu(-8) ≈ -3e-3 times a small up), where the relative error of 1 - s grows.
    assertClose(t, swigluForward(gate, up), refForward(gate, up), 1e-7, 1e-6, `forward n=${n}`);
    const g = swigluBackward(dout, gate, up);
    const ref = refBackward(dout, gate, up);
    assertClose(t, g.dgate, ref.dgate, 1e-7, 1e-5, `dgate n=${n}`);
    assertClose(t, g.dup, ref.dup, 1e-7, 1e-6, `dup n=${n}`);
  }
});

t.test('finite differences agree with backward for gate and up', async (t) => {
  const r = rng(2);
  const n = 50;
  const gate = randn(n, r, -4, 4);
  const up = randn(n, r, -2, 2);
  const probe = randn(n, r);
  const { dgate, dup } = swigluBackward(probe, gate, up);
  const loss = () => dot(swigluForward(gate, up), probe);
  // Each element only moves its own output. Step 1e-3: truncation h^2 |silu'''| / 6 < 1e-7, output
  // rounding ~ 2 * 6e-8 * |out| / (2h) ≈ 5e-5 for |out| ~ 1 (hence atol 2e-4).
  for (const [name, param, grad] of [
    ['gate', gate, dgate],
    ['up', up, dup],
  ] as const) {
    const res = gradcheck({ param, grad, loss, eps: 1e-3, atol: 2e-4, rtol: 1e-3 });
    t.ok(res.worst <= 1, `d${name} (worst ${res.worst.toFixed(3)} at ${res.index} of ${res.checked})`);
  }
});

t.test('large |gate| stays finite and saturates correctly', async (t) => {
  const gate = Float32Array.from([100, -100, 1e4, -1e4, 88.8, -88.8, 1e30, -1e30]);
  const up = new Float32Array(gate.length).fill(2);
  const dout = new Float32Array(gate.length).fill(1);
  const out = swigluForward(gate, up);
  const { dgate, dup } = swigluBackward(dout, gate, up);
  for (const [name, v] of [
    ['out', out],
    ['dgate', dgate],
    ['dup', dup],
  ] as const)
    t.ok(v.every(Number.isFinite), `${name} is finite everywhere: ${Array.from(v)}`);
  // silu(g) -> g for large g and -> 0 for very negative g; its slope -> 1 and 0.
  t.equal(out[0], 200, 'silu(100) * 2 = 200');
  t.ok(Math.abs(out[1]) < 1e-30, 'silu(-100) * 2 ≈ 0');
  t.equal(dgate[0], 2, 'd/dgate at 100 = up');
  t.ok(Math.abs(dgate[1]) < 1e-30, 'd/dgate at -100 ≈ 0');
});

t.test('forward and backward are deterministic', async (t) => {
  const r = rng(3);
  const n = 100000;
  const gate = randn(n, r, -6, 6);
  const up = randn(n, r);
  const dout = randn(n, r);
  t.ok(sameBits(swigluForward(gate, up), swigluForward(gate, up)), 'forward bit-identical');
  const a = swigluBackward(dout, gate, up),
    b = swigluBackward(dout, gate, up);
  t.ok(sameBits(a.dgate, b.dgate) && sameBits(a.dup, b.dup), 'backward bit-identical');
});

t.test('bad input throws a clear error', async (t) => {
  const a = new Float32Array(4);
  t.throws(
    () => swigluForward(new Int32Array(4) as unknown as Float32Array, a),
    /swigluForward: gate must be a Float32Array/,
  );
  t.throws(() => swigluForward(a, new Float32Array(5)), /swigluForward: up must have length 4 \(gate.length\), got 5/);
  const nan = Float32Array.from([0, 1, NaN, 2]);
  t.throws(() => swigluForward(a, nan), /swigluForward: up contains a non-finite value \(nan\) at index 2/);
  t.throws(
    () => swigluBackward(a, a, new Float32Array(3)),
    /swigluBackward: up must have length 4 \(dout.length\), got 3/,
  );
  t.throws(() => swigluBackward(nan, a, a), /swigluBackward: dout contains a non-finite value \(nan\) at index 2/);
  t.throws(
    () => swigluBackward(a, Float32Array.from([0, 0, 0, Infinity]), a),
    /swigluBackward: gate contains a non-finite value \(inf\) at index 3/,
  );
});
