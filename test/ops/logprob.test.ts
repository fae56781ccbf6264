// Fused output head + log-softmax + gather: the blocked online form against the naive full-logits form
// and a float64 reference (values, entropy, lse), its memory, gradients (float64 reference backward and
// finite differences, entropy term included), determinism and bad input.
import t from 'tap';

import {
  logprobBackward,
  logprobForward,
  logprobForwardSync,
  logprobNaive,
  type LogprobOptions,
} from '../../src/engine/logprob.js';
import * as system from '../../src/engine/system.js';
import { assertClose, dot, gradcheck, randInt, randn, rng, sameBits } from '../helpers/numeric.js';

interface Problem {
  T: number;
  H: number;
  V: number;
  hidden: Float32Array;
  head: Float32Array;
  targets: Int32Array;
}

/**
 * Random problem: head in (-1, 1), hidden in (-scale, scale) (a larger scale gives peaked softmaxes);
 * every third token from 1 on has no target (-1), the others hit the whole range 0..V-1.
 */
function problem(T: number, H: number, V: number, seed: number, scale = 1): Problem {
  const r = rng(seed);
  const targets = randInt(T, r, 0, V);
  for (let i = 1; i < T; i += 3) targets[i] = -1;
  targets[0] = V - 1;
  return { T, H, V, hidden: randn(T * H, r, -scale, scale), head: randn(V * H, r), targets };
}

/** Float64 logits of token t. */
function logits(p: Problem, t: number, temperature: number): Float64Array {
  const z = new Float64Array(p.V);
  for (let j = 0; j < p.V; j++) {
    let s = 0;
    for (let k = 0; k < p.H; k++) s += p.hidden[t * p.H + k] * p.head[j * p.H + k];
    z[j] = s / temperature;
  }
  return z;
}

/** Float64 log-softmax statistics of one row: lse, probabilities, entropy. */
function softmax(z: Float64Array) {
  let m = -Infinity;
  for (const x of z) m = Math.max(m, x);
  let s = 0;
  for (const x of z) s += Math.exp(x - m);
  const lse = m + Math.log(s);
  const p = z.map((x) => Math.exp(x - lse));
  let entropy = 0;
  for (let j = 0; j < z.length; j++) entropy -= p[j] * (z[j] - lse);
  return { lse, p, entropy };
}

function refForward(p: Problem, temperature: number) {
  const logp = new Float64Array(p.T);
  const entropy = new Float64Array(p.T);
  const lse = new Float64Array(p.T);
  let maxAbsLogit = 0;
  for (let t = 0; t < p.T; t++) {
    const z = logits(p, t, temperature);
    for (const x of z) maxAbsLogit = Math.max(maxAbsLogit, Math.abs(x));
    const sm = softmax(z);
    lse[t] = sm.lse;
    entropy[t] = sm.entropy;
    logp[t] = p.targets[t] < 0 ? 0 : z[p.targets[t]] - sm.lse;
  }
  return { logp, entropy, lse, maxAbsLogit };
}

/**
 * Float64 gradients of sum_t (dlogp[t] logp[t] + dentropy[t] entropy[t]):
 *   dz_j = g (1[j = target] - p_j) - h p_j (z_j - lse + H)   (dH/dz_j = -p_j (log p_j + H))
 * then z = hidden head^T / temperature gives dhidden = dz head / temperature, dhead = dz^T hidden / temperature.
 */
function refBackward(p: Problem, temperature: number, dlogp: Float32Array, dentropy: Float32Array | null) {
  const dhidden = new Float64Array(p.T * p.H);
  const dhead = new Float64Array(p.V * p.H);
  for (let t = 0; t < p.T; t++) {
    const z = logits(p, t, temperature);
    const sm = softmax(z);
    const g = p.targets[t] < 0 ? 0 : dlogp[t];
    const h = dentropy ? dentropy[t] : 0;
    for (let j = 0; j < p.V; j++) {
      let dz = -g * sm.p[j] - h * sm.p[j] * (z[j] - sm.lse + sm.entropy);
      if (j === p.targets[t]) dz += g;
      dz /= temperature;
      for (let k = 0; k < p.H; k++) {
        dhidden[t * p.H + k] += dz * p.head[j * p.H + k];
        dhead[j * p.H + k] += dz * p.hidden[t * p.H + k];
      }
    }
  }
  return { dhidden, dhead };
}

const options = (p: Problem, extra: Partial<LogprobOptions> = {}): LogprobOptions => ({
  hidden: p.H,
  vocab: p.V,
  entropy: true,
  ...extra,
});

// Error bound of the float32 logits against float64: each is a sum of H products of magnitude below
// `scale`, within H * 2^-24 * H * scale of exact whatever the summation order, then divided by the
// temperature. logp and entropy move by at most twice the largest logit error (z[target] - lse;
// entropy = lse - E_p[z]); the polynomial exp adds ~2 ulp relative to the sums (< 1e-6).
const logitTol = (H: number, temperature: number, scale: number) => (H * H * scale) / 2 ** 24 / temperature;
const valueTol = (H: number, temperature: number, scale = 1) => 2 * logitTol(H, temperature, scale) + 1e-6;

t.test('fused forward equals the naive full log-softmax and the float64 reference', async (t) => {
  // [T, H, V, tokenChunk, vocabChunk, scale]: chunks that divide T and V, that do not, a single
  // block; flat and peaked softmaxes.
  const shapes = [
    [32, 16, 1024, 16, 256, 1],
    [37, 24, 1000, 16, 256, 4],
    [13, 8, 7, 4, 3, 1],
    [21, 16, 333, 8, 64, 6],
    [5, 32, 300, 64, 4096, 1],
  ];
  let seed = 10;
  for (const [T, H, V, tokenChunk, vocabChunk, scale] of shapes) {
    const p = problem(T, H, V, seed++, scale);
    for (const temperature of [1, 0.7, 1.6]) {
      const o = options(p, { temperature, tokenChunk, vocabChunk });
      const what = `T=${T} H=${H} V=${V} chunks ${tokenChunk}x${vocabChunk} temperature ${temperature} scale ${scale}`;
      const fused = await logprobForward(p.hidden, p.head, p.targets, o);
      const naive = await logprobNaive(p.hidden, p.head, p.targets, o);
      const ref = refForward(p, temperature);
      // Same float32 products; only the blocking differs: the softmax sums (terms <= 1) round
      // differently by ~1e-7 relative, and gemm may round a logit differently for another block shape
      // (a few ulps of the logits, which reach |z| ~ 40 in the peaked cases: 2 x 8 ulps on top of 1e-5).
      const same = 1e-5 + 16 * 2 ** -24 * ref.maxAbsLogit;
      assertClose(t, fused.logp, naive.logp, same, 0, `logp fused = naive, ${what}`);
      assertClose(t, fused.entropy!, naive.entropy!, same, 0, `entropy fused = naive, ${what}`);
      assertClose(t, fused.lse, naive.lse, same, 0, `lse fused = naive, ${what}`);
      const tol = valueTol(H, temperature, scale);
      assertClose(t, fused.logp, ref.logp, tol, 0, `logp vs float64, ${what}`);
      assertClose(t, fused.entropy!, ref.entropy, tol, 0, `entropy vs float64, ${what}`);
      assertClose(t, fused.lse, ref.lse, tol, 0, `lse vs float64, ${what}`);
      t.ok(
        Array.from(p.targets).every((id, i) => id >= 0 || fused.logp[i] === 0),
        `logp is exactly 0 where the target is -1, ${what}`,
      );
    }
  }
});

t.test('entropy is optional and does not change logp', async (t) => {
  const p = problem(9, 8, 50, 3);
  const withEntropy = await logprobForward(p.hidden, p.head, p.targets, options(p, { vocabChunk: 16 }));
  const without = await logprobForward(p.hidden, p.head, p.targets, options(p, { vocabChunk: 16, entropy: false }));
  t.equal(without.entropy, undefined, 'no entropy array unless asked for');
  t.ok(sameBits(withEntropy.logp, without.logp) && sameBits(withEntropy.lse, without.lse), 'same logp and lse bits');
});

t.test('a Qwen3-sized vocabulary (151,936) with the default chunks', async (t) => {
  const p = problem(3, 8, 151_936, 4);
  const fused = await logprobForward(p.hidden, p.head, p.targets, options(p));
  const ref = refForward(p, 1);
  assertClose(t, fused.logp, ref.logp, valueTol(8, 1), 0, 'logp');
  assertClose(t, fused.entropy!, ref.entropy, valueTol(8, 1), 0, 'entropy');
});

t.test('extra memory stays within one block per thread plus per-token statistics', async (t) => {
  // Forward: each thread holds a tokenChunk x vocabChunk float block, its tokens' hidden states packed
  // for the register kernel (tile widths up to 32 tokens) and a few per-token rows (<= 48 bytes a
  // token); the walk keeps a statistics record (<= 32 bytes) per token and group of blocks, at most one
  // per block. Backward: each thread holds a block, its block's head rows packed (hidden rounded up to
  // 32 columns) and a T x H dhidden buffer; hidden is packed once for all threads in both orientations
  // (each chunk's tokens or hidden rounded up to 32), plus three floats a token.
  const p = problem(64, 8, 3000, 5);
  for (const [tokenChunk, vocabChunk] of [
    [16, 512],
    [32, 1000],
    [64, 4096],
  ]) {
    const tc = Math.min(tokenChunk, p.T),
      vc = Math.min(vocabChunk, p.V);
    const blocks = Math.ceil(p.V / vc);
    const forwardBound =
      system.threads() * (4 * tc * vc + 4 * p.H * Math.ceil(tc / 32) * 32 + 48 * tc) + 32 * p.T * blocks;
    const up32 = (n: number) => Math.ceil(n / 32) * 32;
    const backwardBound =
      system.threads() * (4 * tc * vc + 4 * vc * up32(p.H) + 4 * p.T * p.H) +
      4 * Math.ceil(p.T / tc) * (p.H * up32(tc) + tc * up32(p.H)) +
      12 * p.T;
    const o = options(p, { tokenChunk, vocabChunk });
    const fwd = await logprobForward(p.hidden, p.head, p.targets, o);
    t.ok(
      fwd.peakBytes > 0 && fwd.peakBytes <= forwardBound,
      `forward ${fwd.peakBytes} <= ${forwardBound} bytes (${tokenChunk}x${vocabChunk}, ${system.threads()} threads)`,
    );
    const bwd = await logprobBackward(new Float32Array(p.T).fill(1), p.hidden, p.head, p.targets, fwd.lse, o, {
      entropy: fwd.entropy!,
      dentropy: new Float32Array(p.T).fill(1),
    });
    t.ok(
      bwd.peakBytes > 0 && bwd.peakBytes <= backwardBound,
      `backward ${bwd.peakBytes} <= ${backwardBound} bytes (${tokenChunk}x${vocabChunk}, ${system.threads()} threads)`,
    );
  }
  const naive = await logprobNaive(p.hidden, p.head, p.targets, options(p));
  t.ok(naive.peakBytes >= 4 * p.T * p.V, `naive holds all T x V logits (${naive.peakBytes} bytes)`);
});

t.test('backward equals the float64 reference backward', async (t) => {
  let seed = 20;
  for (const [T, H, V, tokenChunk, vocabChunk, temperature, scale] of [
    [10, 16, 200, 4, 64, 1, 1],
    [7, 12, 97, 3, 20, 0.6, 4],
    [6, 8, 40, 16, 1024, 1.3, 2],
  ]) {
    const p = problem(T, H, V, seed++, scale);
    const r = rng(seed++);
    const dlogp = randn(T, r);
    const dentropy = randn(T, r);
    const o = options(p, { tokenChunk, vocabChunk, temperature });
    const what = `T=${T} H=${H} V=${V} chunks ${tokenChunk}x${vocabChunk} temperature ${temperature} scale ${scale}`;
    const fwd = await logprobForward(p.hidden, p.head, p.targets, o);
    // dz is a difference of probabilities (each within ~valueTol relative of float64), weighted by
    // |dlogp|, |dentropy| < 1 and |z - lse + H| (a few units); dhidden sums V of them times head
    // values in (-1, 1), dhead sums T of them times hidden values. Errors are relative to the
    // probabilities, so the sums' error stays within a few valueTol (plus float32 sums of the products).
    const tol = 8 * valueTol(H, temperature, scale) * scale + (Math.max(T, V) * 4 * scale) / 2 ** 24;
    for (const withEntropy of [false, true]) {
      const g = await logprobBackward(
        dlogp,
        p.hidden,
        p.head,
        p.targets,
        fwd.lse,
        o,
        withEntropy ? { entropy: fwd.entropy!, dentropy } : undefined,
      );
      const ref = refBackward(p, temperature, dlogp, withEntropy ? dentropy : null);
      const tag = `${withEntropy ? 'logp + entropy' : 'logp only'}, ${what}`;
      assertClose(t, g.dhidden, ref.dhidden, tol, 0, `dhidden, ${tag}`);
      assertClose(t, g.dhead, ref.dhead, tol, 0, `dhead, ${tag}`);
    }
  }
});

t.test('finite differences agree with backward for hidden and head (entropy term included)', async (t) => {
  const p = problem(6, 8, 50, 30);
  const r = rng(31);
  const a = randn(p.T, r);
  const b = randn(p.T, r);
  const temperature = 0.8;
  const o = options(p, { tokenChunk: 4, vocabChunk: 16, temperature });
  const fwd = await logprobForward(p.hidden, p.head, p.targets, o);
  const g = await logprobBackward(a, p.hidden, p.head, p.targets, fwd.lse, o, { entropy: fwd.entropy!, dentropy: b });
  const loss = () => {
    const f = logprobForwardSync(p.hidden, p.head, p.targets, o);
    return dot(f.logp, a) + dot(f.entropy!, b);
  };
  // L is smooth: central differences with h = 1e-2 have truncation error ~ h^2 |L'''| / 6 ~ 1e-5;
  // the float32 outputs (~5e-7 each, 12 terms) add ~2e-6 / (2h) ~ 1e-4 of noise.
  for (const [name, param, grad] of [
    ['hidden', p.hidden, g.dhidden],
    ['head', p.head, g.dhead],
  ] as const) {
    const res = gradcheck({ param, grad, loss, eps: 1e-2, atol: 1e-3, rtol: 1e-2 });
    t.ok(res.worst <= 1, `d${name} (worst ${res.worst.toFixed(3)} at ${res.index} of ${res.checked})`);
  }
});

t.test('forward and backward are deterministic', async (t) => {
  const p = problem(40, 16, 700, 40);
  const o = options(p, { tokenChunk: 16, vocabChunk: 128 });
  const f1 = await logprobForward(p.hidden, p.head, p.targets, o);
  const f2 = await logprobForward(p.hidden, p.head, p.targets, o);
  t.ok(
    sameBits(f1.logp, f2.logp) && sameBits(f1.entropy!, f2.entropy!) && sameBits(f1.lse, f2.lse),
    'forward bit-identical',
  );
  const dlogp = randn(p.T, rng(41));
  const grad = () =>
    logprobBackward(dlogp, p.hidden, p.head, p.targets, f1.lse, o, { entropy: f1.entropy!, dentropy: dlogp });
  const g1 = await grad();
  const g2 = await grad();
  t.ok(sameBits(g1.dhidden, g2.dhidden) && sameBits(g1.dhead, g2.dhead), 'backward bit-identical');
});

t.test('forward bits depend only on vocabChunk: not on threads, token blocks, batching or vector width', async (t) => {
  // Each token's statistics run in a vector lane of their own over the vocabulary blocks in order, and
  // the per-segment statistics (64 blocks each: 188 blocks here make 3) are merged in order.
  const p = problem(45, 24, 3000, 60, 3);
  const o = options(p, { vocabChunk: 16 });
  const [originalThreads, originalKernel] = [system.threads(), system.gemmMicroKernel()];
  t.teardown(() => {
    system.setThreads(originalThreads);
    system.setGemmMicroKernel(originalKernel);
  });
  system.setThreads(1);
  const ref = await logprobForward(p.hidden, p.head, p.targets, { ...o, tokenChunk: 45 });
  const same = (f: { logp: Float32Array; entropy?: Float32Array; lse: Float32Array }, from: number, what: string) => {
    const n = f.logp.length;
    const bits = (a: Float32Array, b: Float32Array) => sameBits(a, b.subarray(from, from + n));
    t.ok(bits(f.logp, ref.logp) && bits(f.entropy!, ref.entropy!) && bits(f.lse, ref.lse), what);
  };
  for (const n of [2, 3]) {
    system.setThreads(n);
    same(await logprobForward(p.hidden, p.head, p.targets, { ...o, tokenChunk: 45 }), 0, `${n} threads`);
  }
  for (const tokenChunk of [1, 7, 32])
    same(await logprobForward(p.hidden, p.head, p.targets, { ...o, tokenChunk }), 0, `tokenChunk ${tokenChunk}`);
  for (const [a, b] of [
    [17, 18],
    [10, 30],
  ])
    same(
      await logprobForward(p.hidden.slice(a * p.H, b * p.H), p.head, p.targets.slice(a, b), o),
      a,
      `tokens ${a}..${b - 1} without the others`,
    );
  for (const kernel of system.gemmMicroKernels()) {
    system.setGemmMicroKernel(kernel);
    same(await logprobForward(p.hidden, p.head, p.targets, o), 0, `register kernel ${kernel} and its vector width`);
  }
});

t.test('backward bits: dhead depends only on the chunks, dhidden also on the thread count', async (t) => {
  // dhead's rows belong to one thread each and sum the token chunks in order; dhidden sums each
  // thread's range of vocabulary blocks in a buffer of its own, added in block order.
  const p = problem(45, 24, 3000, 61, 3);
  const o = options(p, { vocabChunk: 16, tokenChunk: 20 });
  const [originalThreads, originalKernel] = [system.threads(), system.gemmMicroKernel()];
  t.teardown(() => {
    system.setThreads(originalThreads);
    system.setGemmMicroKernel(originalKernel);
  });
  const fwd = await logprobForward(p.hidden, p.head, p.targets, o);
  const dlogp = p.hidden.slice(0, p.T).map((x) => x + 0.5);
  const dentropy = p.hidden.slice(p.T, 2 * p.T);
  const backward = () =>
    logprobBackward(dlogp, p.hidden, p.head, p.targets, fwd.lse, o, { entropy: fwd.entropy!, dentropy });
  system.setThreads(1);
  const ref = await backward();
  for (const n of [2, 3]) {
    system.setThreads(n);
    const g = await backward();
    t.ok(sameBits(g.dhead, ref.dhead), `dhead: ${n} threads, same bits as 1`);
    assertClose(t, g.dhidden, ref.dhidden, 1e-5, 1e-5, `dhidden: ${n} threads`);
  }
  system.setThreads(2);
  const twoThreads = await backward();
  for (const kernel of system.gemmMicroKernels()) {
    system.setGemmMicroKernel(kernel);
    const g = await backward();
    t.ok(
      sameBits(g.dhead, ref.dhead) && sameBits(g.dhidden, twoThreads.dhidden),
      `register kernel ${kernel} and its vector width: same bits`,
    );
  }
});

t.test('bad input throws a clear error', async (t) => {
  const p = problem(4, 3, 10, 50);
  const o = options(p);
  const lse = new Float32Array(4);
  t.throws(
    () => logprobForward([0] as unknown as Float32Array, p.head, p.targets, o),
    /logprobForward: hidden must be a Float32Array \(got a plain Array\)/,
  );
  t.throws(
    () => logprobForward(p.hidden, new Float32Array(29), p.targets, o),
    /logprobForward: head must have length 30 \(vocab\*hidden\), got 29/,
  );
  t.throws(
    () => logprobForward(p.hidden, p.head, new Float32Array(4) as unknown as Int32Array, o),
    /logprobForward: targets must be a Int32Array/,
  );
  t.throws(
    () => logprobForward(p.hidden, p.head, p.targets, { ...o, T: 5 }),
    /logprobForward: targets must have length T = 5, got 4/,
  );
  const badTargets = Int32Array.from([1, -1, 10, 2]);
  t.throws(
    () => logprobForward(p.hidden, p.head, badTargets, o),
    /logprobForward: targets\[2\] = 10 is out of range \[-1, 10\)/,
  );
  const below = Int32Array.from([1, -2, 0, 2]);
  t.throws(() => logprobNaive(p.hidden, p.head, below, o), /logprobNaive: targets\[1\] = -2 is out of range/);
  const nanHidden = p.hidden.slice();
  nanHidden[7] = NaN;
  t.throws(
    () => logprobForward(nanHidden, p.head, p.targets, o),
    /logprobForward: hidden contains a non-finite value \(nan\) at index 7/,
  );
  t.throws(
    () => logprobForward(p.hidden, p.head, p.targets, { ...o, temperature: 0 }),
    /logprobForward: option 'temperature' must be > 0/,
  );
  t.throws(
    () => logprobForward(p.hidden, p.head, p.targets, { ...o, vocabChunk: 0 }),
    /logprobForward: option 'vocabChunk' must be an integer in \[1,/,
  );
  t.throws(
    () => logprobForward(p.hidden, p.head, p.targets, { ...o, entropy: 1 as unknown as boolean }),
    /logprobForward: option 'entropy' must be a boolean/,
  );
  t.throws(
    () => logprobBackward(new Float32Array(3), p.hidden, p.head, p.targets, lse, o),
    /logprobBackward: dlogp must have length 4 \(T\), got 3/,
  );
  const nanDlogp = new Float32Array(4);
  nanDlogp[2] = Infinity;
  t.throws(
    () => logprobBackward(nanDlogp, p.hidden, p.head, p.targets, lse, o),
    /logprobBackward: dlogp contains a non-finite value \(inf\) at index 2/,
  );
  t.throws(
    () =>
      logprobBackward(new Float32Array(4), p.hidden, p.head, p.targets, lse, o, {
        entropy: new Float32Array(4),
        dentropy: null as unknown as Float32Array,
      }),
    /logprobBackward: dentropy and entropy go together/,
  );
  t.throws(
    () => logprobBackward(new Float32Array(4), p.hidden, p.head, badTargets, lse, o),
    /logprobBackward: targets\[2\] = 10 is out of range/,
  );
});
