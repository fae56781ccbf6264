// Rotary position embedding ("rotate half", as Hugging Face Qwen models): standard rope (P = 1),
// multi-section rope with contiguous (Qwen2-VL) and interleaved (Qwen3-VL) section maps, in-place
// use, torch-compatible float32 angles, gradients, determinism, bad input.
import t from 'tap';

import { ropeBackward, ropeForward, ropeSectionMap, type RopeOptions } from '../../src/engine/layers.js';
import { assertClose, closeness, dot, gradcheck, randInt, randn, rng, sameBits } from '../helpers/numeric.js';

// The section map, written from its definition: contiguous gives the first s0 frequencies to time,
// the next s1 to height, the last s2 to width; interleaved (Qwen3-VL) gives frequency j to height if
// j % 3 == 1 and j < 3*s1, to width if j % 3 == 2 and j < 3*s2, to time otherwise.
function refSectionMap(headDim: number, s: number[], interleaved: boolean): number[] {
  const map: number[] = [];
  for (let j = 0; j < headDim / 2; j++) {
    if (interleaved) map.push(j % 3 === 1 && j < 3 * s[1] ? 1 : j % 3 === 2 && j < 3 * s[2] ? 2 : 0);
    else map.push(j < s[0] ? 0 : j < s[0] + s[1] ? 1 : 2);
  }
  return map;
}

// The angle of frequency j at position p, rounded to float32 at each step as torch computes it in
// Hugging Face's rotary embedding: inv_freq = 1 / theta^(2j/d) in float32, angle = p * inv_freq.
function angle(p: number, j: number, headDim: number, theta: number): number {
  const f = Math.fround;
  const invFreq = f(1 / f(f(theta) ** f((2 * j) / headDim)));
  return f(f(p) * invFreq);
}

// Float64 rotation of every head by sign * angle; angleOf gives the angle of (token, frequency).
function refRotate(x: Float32Array, o: RopeOptions, sign: number, angleOf: (t: number, j: number) => number) {
  const half = o.headDim / 2;
  const out = new Float64Array(x.length);
  for (let t = 0; t < o.T; t++)
    for (let h = 0; h < o.heads; h++)
      for (let j = 0; j < half; j++) {
        const a = sign * angleOf(t, j);
        const base = (t * o.heads + h) * o.headDim;
        const x1 = x[base + j],
          x2 = x[base + j + half];
        out[base + j] = x1 * Math.cos(a) - x2 * Math.sin(a);
        out[base + j + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
      }
  return out;
}

// Angles as the op defines them, taking each frequency's position from its section's component.
function torchAngles(pos: Int32Array, o: RopeOptions) {
  const map = o.sections ? refSectionMap(o.headDim, o.sections, o.interleaved ?? false) : null;
  return (t: number, j: number) => angle(pos[(map ? map[j] : 0) * o.T + t], j, o.headDim, o.theta);
}

// Standard rope, a contiguous and an interleaved multi-section rope. Sections of the real models
// are [16, 24, 24] (Qwen2-VL) and [24, 20, 20] (Qwen3-VL) for head_dim 128; these are small ones.
const configs: { name: string; o: RopeOptions }[] = [
  { name: 'standard', o: { T: 9, heads: 3, headDim: 16, theta: 10000 } },
  { name: 'contiguous sections', o: { T: 7, heads: 2, headDim: 16, theta: 1e6, sections: [2, 3, 3] } },
  {
    name: 'interleaved sections',
    o: { T: 7, heads: 2, headDim: 16, theta: 1e6, sections: [2, 3, 3], interleaved: true },
  },
];
const positionsOf = (o: RopeOptions, r: () => number) => randInt((o.sections ? 3 : 1) * o.T, r, 0, 60);

// Outputs are |x| <= sqrt(2) combinations of float32 cos/sin, each rounded once from a double:
// a few float32 ulps (6e-8) of error, so 1e-6 absolute.
const atol = 1e-6;

t.test('section maps follow the contiguous and interleaved rules', async (t) => {
  // Small cases worked by hand from the rules.
  t.same(Array.from(ropeSectionMap(12, [2, 2, 2], false)), [0, 0, 1, 1, 2, 2], 'contiguous [2,2,2]');
  t.same(Array.from(ropeSectionMap(12, [2, 2, 2], true)), [0, 1, 2, 0, 1, 2], 'interleaved [2,2,2]');
  t.same(Array.from(ropeSectionMap(12, [3, 2, 1], true)), [0, 1, 2, 0, 1, 0], 'interleaved [3,2,1]');
  for (const [headDim, s] of [
    [128, [16, 24, 24]],
    [128, [24, 20, 20]],
    [16, [2, 3, 3]],
    [10, [0, 0, 5]],
  ] as const)
    for (const interleaved of [false, true])
      t.same(
        Array.from(ropeSectionMap(headDim, [...s], interleaved)),
        refSectionMap(headDim, [...s], interleaved),
        `headDim ${headDim} sections [${s}] ${interleaved ? 'interleaved' : 'contiguous'}`,
      );
});

t.test('forward and backward match the float64 reference', async (t) => {
  const r = rng(1);
  for (const { name, o } of configs) {
    const x = randn(o.T * o.heads * o.headDim, r);
    const pos = positionsOf(o, r);
    const out = ropeForward(x, pos, o);
    assertClose(t, out, refRotate(x, o, 1, torchAngles(pos, o)), atol, 0, `${name}: forward`);
    const dout = randn(x.length, r);
    // The transpose of a rotation is the rotation by the opposite angle.
    assertClose(
      t,
      ropeBackward(dout, pos, o),
      refRotate(dout, o, -1, torchAngles(pos, o)),
      atol,
      0,
      `${name}: backward`,
    );
    // And since rotations are orthogonal, backward undoes forward.
    assertClose(t, ropeBackward(out, pos, o), x, 2 * atol, 0, `${name}: backward(forward(x)) = x`);
  }
});

t.test('angles are rounded to float32 as torch computes them', async (t) => {
  // At large positions the float32 rounding of theta^(-2j/d) and of pos * inv_freq moves the angle
  // by up to |angle| * 2^-24 ≈ 0.06 rad here: the op must follow torch, not exact arithmetic.
  const r = rng(2);
  const o: RopeOptions = { T: 6, heads: 1, headDim: 16, theta: 1e6 };
  const x = randn(o.T * o.headDim, r);
  const pos = randInt(o.T, r, 200000, 1000000);
  const out = ropeForward(x, pos, o);
  assertClose(t, out, refRotate(x, o, 1, torchAngles(pos, o)), atol, 0, 'matches float32 angles');
  const exact = refRotate(x, o, 1, (tt, j) => pos[tt] * o.theta ** (-(2 * j) / o.headDim));
  t.ok(closeness(out, exact, atol, 0) > 1, 'differs from exact-arithmetic angles (so the check above can tell)');
});

t.test('multi-section rope with equal position components is standard rope', async (t) => {
  const r = rng(3);
  const T = 11,
    heads = 2,
    headDim = 16;
  const x = randn(T * heads * headDim, r);
  const p = randInt(T, r, 0, 1000);
  const pos3 = new Int32Array(3 * T);
  for (let c = 0; c < 3; c++) pos3.set(p, c * T);
  const standard = ropeForward(x, p, { T, heads, headDim, theta: 1e6 });
  for (const interleaved of [false, true]) {
    const o = { T, heads, headDim, theta: 1e6, sections: [2, 3, 3], interleaved };
    t.ok(sameBits(ropeForward(x, pos3, o), standard), `forward, ${interleaved ? 'interleaved' : 'contiguous'}`);
    t.ok(
      sameBits(ropeBackward(x, pos3, o), ropeBackward(x, p, { T, heads, headDim, theta: 1e6 })),
      `backward, ${interleaved ? 'interleaved' : 'contiguous'}`,
    );
  }
});

t.test('in-place forward rotates x itself, with the same result', async (t) => {
  const r = rng(4);
  for (const { name, o } of configs) {
    const x = randn(o.T * o.heads * o.headDim, r);
    const pos = positionsOf(o, r);
    const expected = ropeForward(x, pos, o);
    const returned = ropeForward(x, pos, { ...o, inPlace: true });
    t.equal(returned, x, `${name}: returns x`);
    t.ok(sameBits(x, expected), `${name}: same bits as out of place`);
  }
});

t.test('finite differences agree with backward for x', async (t) => {
  const r = rng(5);
  for (const { name, o } of configs) {
    const x = randn(o.T * o.heads * o.headDim, r);
    const pos = positionsOf(o, r);
    const probe = randn(x.length, r);
    const grad = ropeBackward(probe, pos, o);
    // Linear in x: finite differences are exact but for float32 output rounding, ~6e-8 / (2h) ≈ 3e-6.
    const res = gradcheck({
      param: x,
      grad,
      loss: () => dot(ropeForward(x, pos, o), probe),
      eps: 1e-2,
      atol: 3e-5,
      rtol: 1e-4,
    });
    t.ok(res.worst <= 1, `${name}: dx (worst ${res.worst.toFixed(3)} at ${res.index} of ${res.checked})`);
  }
});

t.test('forward and backward are deterministic', async (t) => {
  const r = rng(6);
  const o: RopeOptions = { T: 300, heads: 8, headDim: 64, theta: 1e6, sections: [12, 10, 10], interleaved: true };
  const x = randn(o.T * o.heads * o.headDim, r);
  const pos = randInt(3 * o.T, r, 0, 5000);
  t.ok(sameBits(ropeForward(x, pos, o), ropeForward(x, pos, o)), 'forward bit-identical');
  t.ok(sameBits(ropeBackward(x, pos, o), ropeBackward(x, pos, o)), 'backward bit-identical');
});

t.test('bad input throws a clear error', async (t) => {
  const o: RopeOptions = { T: 5, heads: 1, headDim: 8, theta: 10000 };
  const x = new Float32Array(40);
  const pos = new Int32Array(5);
  t.throws(() => ropeForward(x, pos, { ...o, headDim: 7 }), /ropeForward: option 'headDim' must be even, got 7/);
  t.throws(() => ropeForward(x, pos, { ...o, theta: 0 }), /ropeForward: option 'theta' must be > 0/);
  t.throws(
    () => ropeForward(new Float32Array(39), pos, o),
    /ropeForward: x must have length 40 \(T\*heads\*headDim\), got 39/,
  );
  t.throws(
    () => ropeForward(x, new Float32Array(5) as unknown as Int32Array, o),
    /ropeForward: pos must be a Int32Array/,
  );
  t.throws(
    () => ropeForward(x, pos, { ...o, sections: [1, 1, 2] }),
    /ropeForward: pos must have length 15 \(3\*T\), got 5/,
  );
  t.throws(
    () => ropeForward(x, new Int32Array(15), { ...o, sections: [1, 1, 1] }),
    /ropeForward: option 'sections' is invalid: .*must sum to head_dim\/2 = 4, got 3/,
  );
  t.throws(
    () => ropeForward(x, new Int32Array(15), { ...o, sections: [2, 2] }),
    /ropeForward: option 'sections' is invalid: .*3 entries/,
  );
  t.throws(
    () => ropeForward(x, new Int32Array(15), { ...o, sections: [5, -1, 0] }),
    /ropeForward: option 'sections'\[1\] must be a non-negative integer/,
  );
  const nan = new Float32Array(40);
  nan[33] = NaN;
  t.throws(() => ropeForward(nan, pos, o), /ropeForward: x contains a non-finite value \(nan\) at index 33/);
  t.throws(() => ropeBackward(nan, pos, o), /ropeBackward: dout contains a non-finite value \(nan\) at index 33/);
  t.throws(
    () => ropeBackward(x, pos, { ...o, interleaved: 'yes' as unknown as boolean }),
    /ropeBackward: option 'interleaved' must be a boolean/,
  );
  t.throws(
    () => ropeSectionMap(16, [4, 4, 4], true),
    /ropeSectionMap: sections is invalid: .*must sum to head_dim\/2 = 8, got 12/,
  );
  t.throws(
    () => ropeSectionMap(16, [4, 4, 0.5], false),
    /ropeSectionMap: sections\[2\] must be a non-negative integer/,
  );
  t.throws(
    () => ropeSectionMap(16, [4, 2, 2], 1 as unknown as boolean),
    /ropeSectionMap: interleaved must be a boolean/,
  );
});
