// SFT loss aggregate(-logp): value and gradient against the direct formulas for every aggregation
// mode, global normalisers, finite differences, empty mask, bad input.
import t from 'tap';

import type { LossAgg } from '../../src/rl/aggregation.js';
import { sftLoss } from '../../src/rl/sft-loss.js';
import { assertClose, gradcheck, randn, rng } from '../helpers/numeric.js';

const AGGS: LossAgg[] = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum'];

interface Batch {
  logp: Float32Array;
  mask: Float32Array;
  cu: Int32Array;
}

/** Sequences of lengths 5, 0, 8, 3, 6 (an empty one); the last one has no masked-in token. */
function batch(seed: number): Batch {
  const r = rng(seed);
  const cu = Int32Array.of(0, 5, 5, 13, 16, 22);
  const logp = randn(22, r, -6, -0.01);
  const mask = new Float32Array(22).map(() => (r() < 0.75 ? 1 : 0));
  mask.fill(0, 16, 22);
  mask[0] = 1;
  return { logp, mask, cu };
}

/**
 * Float64 negative log-likelihood and its gradient, straight from the definitions:
 *   token-mean           -Σ mask·logp / N_tok                      d/dlogp_t = -mask_t / N_tok
 *   seq-mean-token-mean  -(1/N_seq) Σ_s Σ_t∈s mask·logp / n_s      d/dlogp_t = -mask_t / (N_seq n_s)
 *   seq-mean-token-sum   -(1/N_seq) Σ_s Σ_t∈s mask·logp            d/dlogp_t = -mask_t / N_seq
 * n_s = masked tokens of sequence s; N_seq counts sequences with n_s > 0 (or globalSeqs), N_tok = Σ mask (or globalTokens).
 */
function reference(b: Batch, agg: LossAgg, globalTokens = 0, globalSeqs = 0) {
  const T = b.logp.length;
  const dlogp = new Float64Array(T);
  if (agg === 'token-mean') {
    const count = b.mask.reduce((a, v) => a + v, 0);
    if (count === 0) return { loss: 0, dlogp };
    const N = globalTokens || count;
    let loss = 0;
    for (let i = 0; i < T; i++) {
      loss -= (b.mask[i] * b.logp[i]) / N;
      dlogp[i] = -b.mask[i] / N;
    }
    return { loss, dlogp };
  }
  const seqs: { from: number; to: number; n: number }[] = [];
  for (let s = 0; s + 1 < b.cu.length; s++) {
    const n = b.mask.slice(b.cu[s], b.cu[s + 1]).reduce((a, v) => a + v, 0);
    if (n > 0) seqs.push({ from: b.cu[s], to: b.cu[s + 1], n });
  }
  const N = globalSeqs || seqs.length;
  let loss = 0;
  for (const s of seqs) {
    const div = agg === 'seq-mean-token-mean' ? N * s.n : N;
    for (let i = s.from; i < s.to; i++) {
      loss -= (b.mask[i] * b.logp[i]) / div;
      dlogp[i] = -b.mask[i] / div;
    }
  }
  return { loss, dlogp };
}

// sftLoss sums in double from the same float32 inputs (only the summation order differs, ~1e-15
// relative); dlogp comes back in float32 (2^-24 relative).
t.test('value and gradient match the formulas for every aggregation', async (t) => {
  let seed = 1;
  for (const agg of AGGS) {
    const b = batch(seed++);
    const got = sftLoss(b.logp, b.mask, b.cu, { agg });
    const want = reference(b, agg);
    assertClose(t, [got.loss], [want.loss], 1e-12, 1e-12, `loss, ${agg}`);
    assertClose(t, got.dlogp, want.dlogp, 1e-12, 1e-7, `dlogp, ${agg}`);
    t.ok(got.loss > 0, `${agg}: the NLL of log-probs < 0 is positive (${got.loss})`);

    const g = sftLoss(b.logp, b.mask, b.cu, { agg, globalTokens: 40, globalSeqs: 7 });
    const w = reference(b, agg, 40, 7);
    assertClose(t, [g.loss], [w.loss], 1e-12, 1e-12, `loss with global normalisers, ${agg}`);
    assertClose(t, g.dlogp, w.dlogp, 1e-12, 1e-7, `dlogp with global normalisers, ${agg}`);
  }
});

t.test('finite differences agree with dlogp', async (t) => {
  // The loss is linear in logp and comes back in double: central differences are exact up to the
  // float32 step, which gradcheck divides by.
  const b = batch(10);
  for (const agg of AGGS) {
    const g = sftLoss(b.logp, b.mask, b.cu, { agg }).dlogp;
    const res = gradcheck({
      param: b.logp,
      grad: g,
      loss: () => sftLoss(b.logp, b.mask, b.cu, { agg }).loss,
      eps: 1e-3,
      atol: 1e-9,
      rtol: 1e-6,
    });
    t.ok(res.worst <= 1, `${agg}: worst ${res.worst.toFixed(3)} at ${res.index}`);
  }
});

t.test('an empty mask gives loss 0 and a zero gradient', async (t) => {
  const b = batch(20);
  b.mask.fill(0);
  for (const agg of AGGS) {
    const r = sftLoss(b.logp, b.mask, b.cu, { agg, globalTokens: 0 });
    t.equal(r.loss, 0, `${agg}: loss 0`);
    t.ok(
      r.dlogp.every((v) => v === 0),
      `${agg}: dlogp 0`,
    );
  }
});

t.test('bad input throws a clear error', async (t) => {
  const b = batch(30);
  t.throws(
    () => sftLoss(Array.from(b.logp) as unknown as Float32Array, b.mask, b.cu, { agg: 'token-mean' }),
    /sftLoss: logp must be a Float32Array \(got a plain Array\)/,
  );
  t.throws(
    () => sftLoss(b.logp, b.mask.slice(1), b.cu, { agg: 'token-mean' }),
    /sftLoss: mask must have length 22 \(T\), got 21/,
  );
  const nan = b.logp.slice();
  nan[4] = NaN;
  t.throws(
    () => sftLoss(nan, b.mask, b.cu, { agg: 'token-mean' }),
    /sftLoss: logp contains a non-finite value \(NaN\) at index 4/,
  );
  t.throws(
    () => sftLoss(b.logp, b.mask, Int32Array.of(0, 9, 5, 22), { agg: 'token-mean' }),
    /sftLoss: cuSeqlens must be non-decreasing/,
  );
  t.throws(
    () => sftLoss(b.logp, b.mask, [0, 22] as unknown as Int32Array, { agg: 'token-mean' }),
    /sftLoss: cuSeqlens must be an Int32Array \(got a plain Array\)/,
  );
  t.throws(
    () => sftLoss(b.logp, b.mask, Int32Array.of(22), { agg: 'token-mean' }),
    /sftLoss: cuSeqlens must hold at least 2 offsets \(n_seqs \+ 1\), got 1/,
  );
  t.throws(
    () => sftLoss(b.logp, b.mask, Int32Array.of(1, 22), { agg: 'token-mean' }),
    /sftLoss: cuSeqlens\[0\] must be 0, got 1/,
  );
  t.throws(() => sftLoss(b.logp, b.mask, b.cu, {} as { agg: LossAgg }), /sftLoss: option 'agg' is required/);
  t.throws(
    () => sftLoss(b.logp, b.mask, b.cu, { agg: 'token-mean', globalSeqs: -2 }),
    /sftLoss: option 'globalSeqs' must be >= 0/,
  );
});
