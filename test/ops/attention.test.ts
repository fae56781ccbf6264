// Causal grouped-query attention over packed sequences: forward and backward against a naive
// float64 reference, finite-difference gradients, isolation of sequences and of future tokens,
// determinism, the async forms, and errors on bad input.
import t from 'tap';

import {
  attentionBackward,
  attentionBackwardAsync,
  attentionForward,
  attentionForwardAsync,
  type AttentionOptions,
} from '../../src/engine/attention.js';
import { assertClose, dot, gradcheck, randn, rng, sameBits } from '../helpers/numeric.js';

// ---------------------------------------------------------------------------------------------
// Naive float64 reference: for every query row, a full softmax over the keys it may see.

interface Shape {
  heads: number;
  kvHeads: number;
  headDim: number;
  scale: number;
}

function cuSeqlensOf(lengths: number[]): Int32Array {
  const cu = new Int32Array(lengths.length + 1);
  lengths.forEach((n, i) => (cu[i + 1] = cu[i] + n));
  return cu;
}

/** Calls visit(row, head, kvHead, keys) for every query row, with the token indices it attends to. */
function forEachRow(cu: Int32Array, s: Shape, visit: (i: number, h: number, g: number, keys: number[]) => void): void {
  const group = s.heads / s.kvHeads;
  for (let seq = 0; seq + 1 < cu.length; seq++) {
    for (let i = cu[seq]; i < cu[seq + 1]; i++) {
      const keys: number[] = [];
      for (let j = cu[seq]; j <= i; j++) keys.push(j);
      for (let h = 0; h < s.heads; h++) visit(i, h, Math.floor(h / group), keys);
    }
  }
}

/** Dot product of row a (offset ao) and row b (offset bo), length n, in float64. */
function rowDot(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, n: number): number {
  let sum = 0;
  for (let c = 0; c < n; c++) sum += a[ao + c] * b[bo + c];
  return sum;
}

/** Softmax probabilities of query row (i, h) over keys, and their log-sum-exp. */
function probs(q: Float32Array, k: Float32Array, s: Shape, i: number, h: number, g: number, keys: number[]) {
  const D = s.headDim;
  const scores = keys.map((j) => s.scale * rowDot(q, (i * s.heads + h) * D, k, (j * s.kvHeads + g) * D, D));
  const m = Math.max(...scores);
  const sum = scores.reduce((acc, x) => acc + Math.exp(x - m), 0);
  return { p: scores.map((x) => Math.exp(x - m) / sum), lse: m + Math.log(sum) };
}

function naiveForward(q: Float32Array, k: Float32Array, v: Float32Array, cu: Int32Array, s: Shape) {
  const D = s.headDim;
  const T = q.length / (s.heads * D);
  const out = new Float64Array(T * s.heads * D);
  const lse = new Float64Array(T * s.heads);
  forEachRow(cu, s, (i, h, g, keys) => {
    const r = probs(q, k, s, i, h, g, keys);
    lse[i * s.heads + h] = r.lse;
    keys.forEach((j, n) => {
      for (let c = 0; c < D; c++) out[(i * s.heads + h) * D + c] += r.p[n] * v[(j * s.kvHeads + g) * D + c];
    });
  });
  return { out, lse };
}

/**
 * Gradients of L = sum(out * dout), derived by hand for one row o = sum_j p_j v_j with
 * p = softmax(scale * q.k_j): dv_j += p_j dout, dp_j = dout.v_j, ds_j = p_j (dp_j - sum_l p_l dp_l),
 * dq += scale sum_j ds_j k_j, dk_j += scale ds_j q.
 */
function naiveBackward(
  dout: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  cu: Int32Array,
  s: Shape,
) {
  const D = s.headDim;
  const dq = new Float64Array(q.length);
  const dk = new Float64Array(k.length);
  const dv = new Float64Array(v.length);
  forEachRow(cu, s, (i, h, g, keys) => {
    const { p } = probs(q, k, s, i, h, g, keys);
    const qo = (i * s.heads + h) * D;
    const dp = keys.map((j) => rowDot(dout, qo, v, (j * s.kvHeads + g) * D, D));
    const mean = p.reduce((acc, pj, n) => acc + pj * dp[n], 0);
    keys.forEach((j, n) => {
      const ko = (j * s.kvHeads + g) * D;
      const ds = p[n] * (dp[n] - mean);
      for (let c = 0; c < D; c++) {
        dv[ko + c] += p[n] * dout[qo + c];
        dq[qo + c] += s.scale * ds * k[ko + c];
        dk[ko + c] += s.scale * ds * q[qo + c];
      }
    });
  });
  return { dq, dk, dv };
}

// ---------------------------------------------------------------------------------------------
// Cases

interface Case {
  name: string;
  lengths: number[];
  opts: AttentionOptions;
  /** Range of q values: wider makes the softmax peakier, which exercises the max subtraction. */
  qRange: number;
}

// Lengths [5, 1, 0, 130, 17]: a single-token and an empty sequence, and one spanning three query
// blocks of the implementation (64 rows each, the last partial).
const packing = [5, 1, 0, 130, 17];
const manyShort = Array.from({ length: 40 }, (_, i) => (i * 7) % 9); // 40 sequences of 0..8 tokens

const cases: Case[] = [
  { name: 'MHA, headDim 64', lengths: packing, opts: { heads: 2, kvHeads: 2, headDim: 64 }, qRange: 3 },
  { name: 'GQA 6/2, odd headDim 12', lengths: packing, opts: { heads: 6, kvHeads: 2, headDim: 12 }, qRange: 2 },
  {
    name: 'MQA, headDim 128, empty ends',
    lengths: [0, 70, 3, 0],
    opts: { heads: 4, kvHeads: 1, headDim: 128 },
    qRange: 4,
  },
  {
    name: 'GQA 4/2, many sequences, scale 0.7',
    lengths: manyShort,
    opts: { heads: 4, kvHeads: 2, headDim: 8, scale: 0.7 },
    qRange: 1,
  },
];

function inputs(c: Case, seed: number) {
  const r = rng(seed);
  const T = c.lengths.reduce((a, b) => a + b, 0);
  const { heads, kvHeads, headDim } = c.opts;
  return {
    T,
    cu: cuSeqlensOf(c.lengths),
    q: randn(T * heads * headDim, r, -c.qRange, c.qRange),
    k: randn(T * kvHeads * headDim, r),
    v: randn(T * kvHeads * headDim, r),
    dout: randn(T * heads * headDim, r),
  };
}

function shapeOf(o: AttentionOptions): Shape {
  return { heads: o.heads, kvHeads: o.kvHeads, headDim: o.headDim, scale: o.scale ?? 1 / Math.sqrt(o.headDim) };
}

// Tolerances against float64: the op rounds each product and partial sum to float32 (relative
// 6e-8) over at most 130 keys x 128 dims, plus exp/log in float32; inputs and outputs are O(1), so
// errors stay around 1e-6. atol 2e-5 / rtol 1e-4 leaves a margin of >10x while still catching any
// wrong mask, head mapping or missing term (those give O(0.1) errors).
const ATOL = 2e-5;
const RTOL = 1e-4;

t.test('forward and backward match the float64 reference', async (t) => {
  for (const [n, c] of cases.entries()) {
    const x = inputs(c, 10 + n);
    const s = shapeOf(c.opts);
    const ref = naiveForward(x.q, x.k, x.v, x.cu, s);
    const fwd = attentionForward(x.q, x.k, x.v, x.cu, c.opts);
    assertClose(t, fwd.out, ref.out, ATOL, RTOL, `${c.name}: out`);
    assertClose(t, fwd.lse, ref.lse, ATOL, RTOL, `${c.name}: lse`);

    const refGrad = naiveBackward(x.dout, x.q, x.k, x.v, x.cu, s);
    const g = attentionBackward(x.dout, fwd.out, fwd.lse, x.q, x.k, x.v, x.cu, c.opts);
    assertClose(t, g.dq, refGrad.dq, ATOL, RTOL, `${c.name}: dq`);
    assertClose(t, g.dk, refGrad.dk, ATOL, RTOL, `${c.name}: dk`);
    assertClose(t, g.dv, refGrad.dv, ATOL, RTOL, `${c.name}: dv`);
  }
});

t.test('finite differences of the op agree with its backward for q, k and v', async (t) => {
  // Small GQA case with an empty and a single-token sequence; every entry is checked.
  const c: Case = { name: 'small', lengths: [3, 0, 1, 5], opts: { heads: 4, kvHeads: 2, headDim: 6 }, qRange: 2 };
  const x = inputs(c, 77);
  const fwd = attentionForward(x.q, x.k, x.v, x.cu, c.opts);
  const g = attentionBackward(x.dout, fwd.out, fwd.lse, x.q, x.k, x.v, x.cu, c.opts);
  const loss = () => dot(attentionForward(x.q, x.k, x.v, x.cu, c.opts).out, x.dout);
  // The loss sums 9*4*6 = 216 float32 outputs of size O(1): its rounding noise is about
  // 6e-8 * sqrt(216) * |term| ~ 1e-6, divided by the step 2h = 2e-2 gives ~5e-5; the truncation
  // error h^2/6 * L''' is ~2e-5. atol 2e-4 / rtol 2e-3 sits a few times above both and far below
  // the O(0.1) errors a wrong formula would produce.
  for (const [name, param, grad] of [
    ['q', x.q, g.dq],
    ['k', x.k, g.dk],
    ['v', x.v, g.dv],
  ] as const) {
    const r = gradcheck({ param, grad, loss, eps: 1e-2, atol: 2e-4, rtol: 2e-3 });
    t.ok(
      r.worst <= 1,
      `d${name}: worst ${r.worst.toFixed(3)} x tolerance over ${r.checked} entries (index ${r.index})`,
    );
  }
});

t.test('a token influences only later tokens of its own sequence, bit for bit', async (t) => {
  const c = cases[1];
  const x = inputs(c, 5);
  const { heads, kvHeads, headDim } = c.opts;
  const base = attentionForward(x.q, x.k, x.v, x.cu, c.opts);
  const baseGrad = attentionBackward(x.dout, base.out, base.lse, x.q, x.k, x.v, x.cu, c.opts);

  // Perturb every input of sequence 3 (tokens [6, 136)) from token 100 on: sequences 0, 1, 4 and
  // tokens 6..99 of sequence 3 must not change at all, in the forward or the backward pass.
  const from = 100;
  const to = x.cu[4];
  const bump = (a: Float32Array, perToken: number) => {
    const b = a.slice();
    for (let i = from * perToken; i < to * perToken; i++) b[i] += 0.5;
    return b;
  };
  const q2 = bump(x.q, heads * headDim);
  const k2 = bump(x.k, kvHeads * headDim);
  const v2 = bump(x.v, kvHeads * headDim);
  const dout2 = bump(x.dout, heads * headDim);
  const fwd = attentionForward(q2, k2, v2, x.cu, c.opts);
  const grad = attentionBackward(dout2, fwd.out, fwd.lse, q2, k2, v2, x.cu, c.opts);

  const unchanged = (a: Float32Array, b: Float32Array, perToken: number, what: string) => {
    const before = (x: Float32Array) => x.subarray(0, from * perToken);
    const after = (x: Float32Array) => x.subarray(to * perToken);
    t.ok(
      sameBits(before(a), before(b)) && sameBits(after(a), after(b)),
      `${what} outside the perturbed span is unchanged`,
    );
  };
  unchanged(base.out, fwd.out, heads * headDim, 'out');
  unchanged(base.lse, fwd.lse, heads, 'lse');
  unchanged(baseGrad.dq, grad.dq, heads * headDim, 'dq');
  // Keys before token 100 of sequence 3 do receive gradient from the perturbed later queries, so
  // only the other sequences' dk/dv are required to stay the same.
  const otherSeqs = (a: Float32Array, perToken: number) => [
    a.subarray(0, x.cu[3] * perToken),
    a.subarray(to * perToken),
  ];
  for (const [what, a, b] of [
    ['dk', baseGrad.dk, grad.dk],
    ['dv', baseGrad.dv, grad.dv],
  ] as const) {
    const [a0, a1] = otherSeqs(a, kvHeads * headDim);
    const [b0, b1] = otherSeqs(b, kvHeads * headDim);
    t.ok(sameBits(a0, b0) && sameBits(a1, b1), `${what} of the other sequences is unchanged`);
  }
  t.notOk(sameBits(base.out, fwd.out), 'the perturbation does change the perturbed rows');
});

t.test('results are bit-identical run to run, and the async forms give the same bits', async (t) => {
  const c = cases[1];
  const x = inputs(c, 9);
  const a = attentionForward(x.q, x.k, x.v, x.cu, c.opts);
  const b = attentionForward(x.q, x.k, x.v, x.cu, c.opts);
  const fa = await attentionForwardAsync(x.q, x.k, x.v, x.cu, c.opts);
  t.ok(sameBits(a.out, b.out) && sameBits(a.lse, b.lse), 'forward repeats exactly');
  t.ok(sameBits(a.out, fa.out) && sameBits(a.lse, fa.lse), 'forward async = sync');

  const ga = attentionBackward(x.dout, a.out, a.lse, x.q, x.k, x.v, x.cu, c.opts);
  const gb = attentionBackward(x.dout, a.out, a.lse, x.q, x.k, x.v, x.cu, c.opts);
  const gc = await attentionBackwardAsync(x.dout, a.out, a.lse, x.q, x.k, x.v, x.cu, c.opts);
  for (const key of ['dq', 'dk', 'dv'] as const) {
    t.ok(sameBits(ga[key], gb[key]), `${key} repeats exactly`);
    t.ok(sameBits(ga[key], gc[key]), `${key} async = sync`);
  }
});

t.test('no tokens gives empty results', async (t) => {
  const o = { heads: 2, kvHeads: 1, headDim: 4 };
  const e = new Float32Array(0);
  const cu = new Int32Array([0, 0]);
  const f = attentionForward(e, e, e, cu, o);
  t.same([f.out.length, f.lse.length], [0, 0]);
  const g = attentionBackward(e, e, e, e, e, e, cu, o);
  t.same([g.dq.length, g.dk.length, g.dv.length], [0, 0, 0]);
});

t.test('bad input throws a clear error', async (t) => {
  const o = { heads: 4, kvHeads: 2, headDim: 3 };
  const T = 5;
  const r = rng(1);
  const q = randn(T * 12, r);
  const k = randn(T * 6, r);
  const v = randn(T * 6, r);
  const cu = new Int32Array([0, 2, 5]);
  const fwd = () => attentionForward(q, k, v, cu, o);
  t.doesNotThrow(fwd, 'the valid call works');
  const { out, lse } = fwd();

  const F = 'attentionForward: ';
  t.throws(() => attentionForward(new Float64Array(60) as unknown as Float32Array, k, v, cu, o), {
    message: `${F}q must be a Float32Array (got a different typed array)`,
  });
  t.throws(() => attentionForward(q.subarray(1), k, v, cu, o), {
    message: `${F}q length 59 is not a multiple of heads*headDim (12)`,
  });
  t.throws(() => attentionForward(q, k.subarray(3), v, cu, o), {
    message: `${F}k must have length 30 (T*kvHeads*headDim), got 27`,
  });
  t.throws(() => attentionForward(q, k, new Float32Array(31), cu, o), { message: /v must have length 30/ });
  const vNaN = v.slice();
  vNaN[17] = NaN;
  t.throws(() => attentionForward(q, k, vNaN, cu, o), {
    message: `${F}v contains a non-finite value (nan) at index 17`,
  });
  t.throws(() => attentionForward(q, k, v, new Int32Array([0, 2, 4]), o), {
    message: `${F}cuSeqlens must end at the token count 5, got 4`,
  });
  t.throws(() => attentionForward(q, k, v, new Int32Array([0, 3, 2, 5]), o), {
    message: /cuSeqlens must be non-decreasing/,
  });
  t.throws(() => attentionForward(q, k, v, new Int32Array([1, 5]), o), { message: /cuSeqlens\[0\] must be 0/ });
  t.throws(() => attentionForward(q, k, v, [0, 5] as unknown as Int32Array, o), {
    message: `${F}cuSeqlens must be a Int32Array (got a plain Array)`,
  });
  t.throws(() => attentionForward(q, k, v, cu, { heads: 4, kvHeads: 3, headDim: 3 }), {
    message: `${F}option 'heads' (4) must be a multiple of 'kvHeads' (3)`,
  });
  t.throws(() => attentionForward(q, k, v, cu, { ...o, headDim: 0 }), {
    message: /option 'headDim' must be an integer/,
  });
  t.throws(() => attentionForward(q, k, v, cu, { ...o, scale: -1 }), { message: /option 'scale' must be > 0/ });
  t.throws(() => attentionForward(q, k, v, cu, undefined as unknown as AttentionOptions), {
    message: `${F}options must be an object`,
  });

  const B = 'attentionBackward: ';
  t.doesNotThrow(() => attentionBackward(out, out, lse, q, k, v, cu, o), 'the valid backward call works');
  t.throws(() => attentionBackward(out, out, lse.subarray(1), q, k, v, cu, o), {
    message: `${B}lse must have length 20 (T*heads), got 19`,
  });
  t.throws(() => attentionBackward(out.subarray(12), out, lse, q, k, v, cu, o), {
    message: `${B}dout must have length 60 (T*heads*headDim), got 48`,
  });
  const doutInf = out.slice();
  doutInf[3] = Infinity;
  t.throws(() => attentionBackward(doutInf, out, lse, q, k, v, cu, o), { message: /dout contains a non-finite value/ });

  await t.rejects(attentionForwardAsync(q, k.subarray(3), v, cu, o), {
    message: 'attentionForward: k must have length 30 (T*kvHeads*headDim), got 27',
  });
  await t.rejects(attentionBackwardAsync(out, out, lse, q, k, v, new Int32Array([0, 6]), o), {
    message: /attentionBackward: cuSeqlens must end at the token count 5/,
  });
});
