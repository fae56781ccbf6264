// RL policy losses (ppo, gspo, cispo) with KL penalty and entropy bonus: loss, every metric and the
// gradients against a direct float64 implementation of the formulas, finite differences, edge cases
// (empty mask, zero advantages, extreme log-ratios), global normalisers across micro-batches, bad input.
import t, { type Test } from 'tap';

import type { LossAgg } from '../../src/rl/aggregation.js';
import type { KlEstimator } from '../../src/rl/kl-estimator.js';
import {
  policyLoss,
  type PolicyLossInputs,
  type PolicyLossKind,
  type PolicyLossOptions,
} from '../../src/rl/policy-loss.js';
import { assertClose, gradcheck, randn, rng } from '../helpers/numeric.js';

const KINDS: PolicyLossKind[] = ['ppo', 'gspo', 'cispo'];
const AGGS: LossAgg[] = ['token-mean', 'seq-mean-token-mean', 'seq-mean-token-sum'];
const KLS: KlEstimator[] = ['none', 'k1', 'abs', 'mse', 'low_var_kl'];

// ---------------------------------------------------------------------------------------------
// Float64 reference, written from the formulas.

const clamp = (x: number, lo: number, hi: number) => Math.min(Math.max(x, lo), hi);

/** Sequences as [start, end) token ranges. */
function sequences(cu: Int32Array): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < cu.length; i++) out.push([cu[i], cu[i + 1]]);
  return out;
}

interface Norm {
  agg: LossAgg;
  globalTokens?: number;
  globalSeqs?: number;
}

/**
 * token-mean: Σ mask·x / N_tok; seq-mean-token-mean: (1/N_seq) Σ_seq Σ mask·x / Σ mask;
 * seq-mean-token-sum: (1/N_seq) Σ_seq Σ mask·x; only sequences with a masked-in token count.
 */
function refAggregate(x: ArrayLike<number>, mask: Float32Array, cu: Int32Array, n: Norm): number {
  if (n.agg === 'token-mean') {
    let sum = 0,
      count = 0;
    for (let i = 0; i < x.length; i++) {
      sum += mask[i] * x[i];
      count += mask[i];
    }
    const N = n.globalTokens || count;
    return count === 0 ? 0 : sum / N;
  }
  const terms: number[] = [];
  for (const [b, e] of sequences(cu)) {
    let sum = 0,
      count = 0;
    for (let i = b; i < e; i++) {
      sum += mask[i] * x[i];
      count += mask[i];
    }
    if (count > 0) terms.push(n.agg === 'seq-mean-token-mean' ? sum / count : sum);
  }
  if (terms.length === 0) return 0;
  return terms.reduce((a, b) => a + b, 0) / (n.globalSeqs || terms.length);
}

/** d refAggregate / d x_i: mask_i / N_tok, mask_i / (N_seq Σ_seq mask), or mask_i / N_seq. */
function refAggWeights(mask: Float32Array, cu: Int32Array, n: Norm): Float64Array {
  const w = new Float64Array(mask.length);
  if (n.agg === 'token-mean') {
    const count = mask.reduce((a, b) => a + b, 0);
    const N = n.globalTokens || count;
    for (let i = 0; i < mask.length; i++) w[i] = count === 0 ? 0 : mask[i] / N;
    return w;
  }
  const seqs = sequences(cu).map(([b, e]) => ({ b, e, count: mask.slice(b, e).reduce((a, c) => a + c, 0) }));
  const N = n.globalSeqs || seqs.filter((s) => s.count > 0).length;
  for (const s of seqs) {
    if (s.count === 0) continue;
    for (let i = s.b; i < s.e; i++) w[i] = mask[i] / (N * (n.agg === 'seq-mean-token-mean' ? s.count : 1));
  }
  return w;
}

const maskedMean = (x: ArrayLike<number>, mask: Float32Array) =>
  refAggregate(x, mask, Int32Array.of(0, mask.length), { agg: 'token-mean' });

/** Per-token KL estimate and its derivative wrt logp. */
function refKl(kind: KlEstimator, logp: number, ref: number): [number, number] {
  const x = logp - ref;
  switch (kind) {
    case 'none':
      return [0, 0];
    case 'k1':
      return [x, 1];
    case 'abs':
      return [Math.abs(x), Math.sign(x)];
    case 'mse':
      return [0.5 * x * x, x];
    case 'low_var_kl': {
      // d = ref - logp clamped to ±20; kl = exp(d) - d - 1 clamped to ±10; d kl/d logp = 1 - exp(d), 0 under a clamp.
      const d = clamp(ref - logp, -20, 20);
      const k = Math.exp(d) - d - 1;
      const active = Math.abs(ref - logp) >= 20 || Math.abs(k) >= 10;
      return [clamp(k, -10, 10), active ? 0 : 1 - Math.exp(d)];
    }
  }
}

interface TokenTerms {
  loss: number[];
  dloss: number[];
  higher: number[];
  lower: number[];
  kl: number[]; // the per-token ppo_kl term, old_logp - logp
}

/** PPO: ratio = exp(delta), delta = clamp(logp - old, ±20); clipped in log space; dual clip for A < 0. */
function refPpo(x: PolicyLossInputs, o: PolicyLossOptions): TokenTerms {
  const r: TokenTerms = { loss: [], dloss: [], higher: [], lower: [], kl: [] };
  const lo = Math.log(1 - o.clipLow),
    hi = Math.log(1 + o.clipHigh);
  for (let i = 0; i < x.logp.length; i++) {
    const raw = x.logp[i] - x.oldLogp[i];
    const delta = clamp(raw, -20, 20);
    const A = x.advantages[i];
    const ratio = Math.exp(delta);
    const clipped = Math.exp(clamp(delta, lo, hi));
    const loss1 = -A * ratio,
      loss2 = -A * clipped;
    let l = Math.max(loss1, loss2);
    let dl = loss1 >= loss2 ? (Math.abs(raw) < 20 ? -A * ratio : 0) : delta > lo && delta < hi ? -A * clipped : 0;
    let lower = 0;
    if ((o.dualClip ?? 0) > 0 && A < 0 && l > -A * o.dualClip!) {
      l = -A * o.dualClip!;
      dl = 0;
      lower = 1;
    }
    r.loss.push(l);
    r.dloss.push(dl);
    r.higher.push(loss2 > loss1 ? 1 : 0);
    r.lower.push(lower);
    r.kl.push(-delta);
  }
  return r;
}

/** GSPO: ratio = exp(min(s_seq, 10)), s_seq = masked mean of logp - old over the sequence; d ratio / d logp_t = ratio. */
function refGspo(x: PolicyLossInputs, o: PolicyLossOptions): TokenTerms {
  const T = x.logp.length;
  const r: TokenTerms = {
    loss: new Array(T).fill(0),
    dloss: new Array(T).fill(0),
    higher: new Array(T).fill(0),
    lower: new Array(T).fill(0),
    kl: [],
  };
  for (let i = 0; i < T; i++) r.kl.push(x.oldLogp[i] - x.logp[i]);
  for (const [b, e] of sequences(x.cuSeqlens)) {
    let sum = 0,
      count = 0;
    for (let i = b; i < e; i++) {
      sum += x.mask[i] * (x.logp[i] - x.oldLogp[i]);
      count += x.mask[i];
    }
    const s = count > 0 ? sum / count : 0;
    const ratio = Math.exp(Math.min(s, 10));
    const dratio = s < 10 ? ratio : 0;
    const clipped = clamp(ratio, 1 - o.clipLow, 1 + o.clipHigh);
    const inside = ratio > 1 - o.clipLow && ratio < 1 + o.clipHigh;
    for (let i = b; i < e; i++) {
      const A = x.advantages[i];
      const loss1 = -A * ratio,
        loss2 = -A * clipped;
      r.loss[i] = Math.max(loss1, loss2);
      r.dloss[i] = loss1 >= loss2 || inside ? -A * dratio : 0;
      r.higher[i] = loss2 > loss1 ? 1 : 0;
    }
  }
  return r;
}

/** CISPO: l = -stopgrad(clip(ratio)) A logp, d l / d logp = -clip(ratio) A. */
function refCispo(x: PolicyLossInputs, o: PolicyLossOptions): TokenTerms {
  const r: TokenTerms = { loss: [], dloss: [], higher: [], lower: [], kl: [] };
  for (let i = 0; i < x.logp.length; i++) {
    const delta = clamp(x.logp[i] - x.oldLogp[i], -20, 20);
    const ratio = Math.exp(delta);
    const c = clamp(ratio, 1 - o.clipLow, 1 + o.clipHigh);
    r.loss.push(-c * x.advantages[i] * x.logp[i]);
    r.dloss.push(-c * x.advantages[i]);
    r.higher.push(ratio > 1 + o.clipHigh ? 1 : 0);
    r.lower.push(ratio < 1 - o.clipLow ? 1 : 0);
    r.kl.push(-delta);
  }
  return r;
}

function refPolicyLoss(x: PolicyLossInputs, options: PolicyLossOptions) {
  const o = {
    ...options,
    dualClip: options.dualClip ?? 0,
    klCoef: options.klCoef ?? 0,
    entropyCoef: options.entropyCoef ?? 0,
  };
  const terms = { ppo: refPpo, gspo: refGspo, cispo: refCispo }[o.kind](x, o);
  const T = x.logp.length;
  const kind = o.kl ?? 'none';
  const kl = Array.from({ length: T }, (_, i) => (kind === 'none' ? [0, 0] : refKl(kind, x.logp[i], x.refLogp![i])));
  const pg_loss = refAggregate(terms.loss, x.mask, x.cuSeqlens, o);
  const kl_loss = refAggregate(
    kl.map((k) => k[0]),
    x.mask,
    x.cuSeqlens,
    o,
  );
  const entropy = x.entropy ? refAggregate(x.entropy, x.mask, x.cuSeqlens, o) : 0;
  const w = refAggWeights(x.mask, x.cuSeqlens, o);
  return {
    loss: pg_loss + (o.klCoef ?? 0) * kl_loss - (o.entropyCoef ?? 0) * entropy,
    metrics: {
      pg_loss,
      kl_loss,
      entropy,
      pg_clipfrac_higher: maskedMean(terms.higher, x.mask),
      pg_clipfrac_lower: maskedMean(terms.lower, x.mask),
      ppo_kl: maskedMean(terms.kl, x.mask),
      tokens: x.mask.reduce((a, b) => a + b, 0),
    },
    dlogp: Array.from(w, (wi, i) => wi * (terms.dloss[i] + (o.klCoef ?? 0) * kl[i][1])),
    dentropy: Array.from(w, (wi) => -(o.entropyCoef ?? 0) * wi),
  };
}

// ---------------------------------------------------------------------------------------------
// Inputs

/**
 * A packed batch: sequences of the given lengths (an empty one and one with everything masked out
 * included by default), ~70% of tokens masked in, log-ratios spread over both clip sides.
 */
function batch(seed: number, lengths = [7, 0, 12, 5, 9, 4], spread = 0.6): PolicyLossInputs {
  const r = rng(seed);
  const cu = Int32Array.from([
    0,
    ...lengths.map(
      (
        (s) => (n: number) =>
          (s += n)
      )(0),
    ),
  ]);
  const T = cu[cu.length - 1];
  const logp = randn(T, r, -3, -0.05);
  const oldLogp = logp.map((x) => x + spread * (2 * r() - 1));
  const refLogp = logp.map((x) => x + 0.5 * (2 * r() - 1));
  const advantages = randn(T, r, -2, 2);
  const mask = new Float32Array(T).map(() => (r() < 0.7 ? 1 : 0));
  mask.fill(0, cu[4], cu[5]); // the fifth sequence has no masked-in token
  const entropy = randn(T, r, 0, 3);
  return { logp, oldLogp, refLogp, advantages, mask, entropy, cuSeqlens: cu };
}

const baseOptions = (kind: PolicyLossKind, agg: LossAgg, kl: KlEstimator = 'none'): PolicyLossOptions => ({
  kind,
  agg,
  clipLow: 0.2,
  clipHigh: 0.28,
  kl,
  klCoef: kl === 'none' ? 0 : 0.05,
  entropyCoef: 0.01,
});

// policyLoss evaluates the same formulas in double from the same float32 inputs, but clips the ratio
// where this reference clips the log-ratio, and sums in another order (~1e-15 relative). dlogp and dentropy come back as float32
// (relative rounding 2^-24 ≈ 6e-8).
function compare(t: Test, got: ReturnType<typeof policyLoss>, want: ReturnType<typeof refPolicyLoss>, what: string) {
  const scalars = (m: Record<string, number>) => Object.keys(want.metrics).map((k) => m[k]);
  assertClose(t, [got.loss], [want.loss], 1e-12, 1e-10, `loss, ${what}`);
  assertClose(
    t,
    scalars(got.metrics as unknown as Record<string, number>),
    scalars(want.metrics),
    1e-12,
    1e-10,
    `metrics ${Object.keys(want.metrics).join(',')}, ${what}`,
  );
  assertClose(t, got.dlogp, want.dlogp, 1e-12, 1e-7, `dlogp, ${what}`);
  if (got.dentropy) assertClose(t, got.dentropy, want.dentropy, 1e-12, 1e-7, `dentropy, ${what}`);
}

// ---------------------------------------------------------------------------------------------

t.test('every kind x aggregation x KL estimator matches the float64 formulas', async (t) => {
  let seed = 100;
  for (const kind of KINDS)
    for (const agg of AGGS)
      for (const kl of KLS) {
        const x = batch(seed++);
        const o = baseOptions(kind, agg, kl);
        compare(t, policyLoss(x, o), refPolicyLoss(x, o), `${kind} ${agg} kl=${kl}`);
      }
});

t.test('the clip-fraction metrics see both sides of the clip range', async (t) => {
  // Guards the comparison above against vacuous metrics: the batch must clip somewhere.
  const x = batch(7);
  const ppo = policyLoss(x, { ...baseOptions('ppo', 'token-mean'), dualClip: 1.5 });
  t.ok(
    ppo.metrics.pg_clipfrac_higher > 0 && ppo.metrics.pg_clipfrac_higher < 1,
    `ppo clipfrac ${ppo.metrics.pg_clipfrac_higher}`,
  );
  const cispo = policyLoss(x, baseOptions('cispo', 'token-mean'));
  t.ok(cispo.metrics.pg_clipfrac_higher > 0 && cispo.metrics.pg_clipfrac_lower > 0, 'cispo clips above and below');
});

t.test('dual clip caps negative-advantage tokens', async (t) => {
  // Large log-ratios so that -A * ratio exceeds -A * c for many negative-advantage tokens.
  let seed = 200;
  for (const agg of AGGS)
    for (const dualClip of [1.5, 3]) {
      const x = batch(seed++, undefined, 2.5);
      const o = { ...baseOptions('ppo', agg, 'k1'), dualClip };
      const got = policyLoss(x, o);
      compare(t, got, refPolicyLoss(x, o), `ppo ${agg} dualClip=${dualClip}`);
      t.ok(got.metrics.pg_clipfrac_lower > 0, `the dual clip is active somewhere (${got.metrics.pg_clipfrac_lower})`);
      const without = policyLoss(x, { ...o, dualClip: 0 });
      t.ok(got.metrics.pg_loss < without.metrics.pg_loss, 'capping lowers the loss');
      t.equal(without.metrics.pg_clipfrac_lower, 0, 'no lower clip fraction without dual clip');
    }
});

t.test('finite differences agree with dlogp', async (t) => {
  // The losses are piecewise smooth in logp; h = 1e-3 on values ~1 gives a central-difference
  // truncation error ~ h^2 |L'''| ~ 1e-6 relative, and the loss comes back in double (no rounding noise).
  // The random inputs keep every ratio further than h from a clip boundary for these seeds.
  let seed = 300;
  for (const agg of AGGS) {
    for (const kl of ['none', 'mse', 'low_var_kl'] as KlEstimator[]) {
      // ppo has no stop-gradient: dlogp is the derivative of the loss value.
      const x = batch(seed++);
      const o = { ...baseOptions('ppo', agg, kl), dualClip: 3 };
      const g = policyLoss(x, o).dlogp;
      const res = gradcheck({
        param: x.logp,
        grad: g,
        loss: () => policyLoss(x, o).loss,
        eps: 1e-3,
        atol: 1e-7,
        rtol: 1e-4,
      });
      t.ok(res.worst <= 1, `ppo ${agg} kl=${kl}: worst ${res.worst.toFixed(3)} at ${res.index}`);
    }
    {
      // gspo stops the gradient through the sequence mean; with one advantage per sequence (as GRPO
      // gives) the true derivative through the mean sums to the same per-token value.
      const x = batch(seed++);
      for (const [b, e] of sequences(x.cuSeqlens)) x.advantages.fill(x.advantages[b] ?? 0, b, e);
      const o = baseOptions('gspo', agg, 'k1');
      const g = policyLoss(x, o).dlogp;
      const res = gradcheck({
        param: x.logp,
        grad: g,
        loss: () => policyLoss(x, o).loss,
        eps: 1e-3,
        atol: 1e-7,
        rtol: 1e-4,
      });
      t.ok(res.worst <= 1, `gspo ${agg}: worst ${res.worst.toFixed(3)} at ${res.index}`);
    }
    {
      // cispo stops the gradient through the clipped ratio: moving logp and oldLogp together keeps the
      // ratio fixed, so the finite difference is exactly the stop-gradient derivative (the KL term
      // reads logp and refLogp only).
      const x = batch(seed++);
      const o = baseOptions('cispo', agg, 'mse');
      const g = policyLoss(x, o).dlogp;
      const old0 = x.oldLogp.slice(),
        logp0 = x.logp.slice();
      const loss = () => {
        for (let i = 0; i < old0.length; i++) x.oldLogp[i] = old0[i] + (x.logp[i] - logp0[i]);
        return policyLoss(x, o).loss;
      };
      const res = gradcheck({ param: x.logp, grad: g, loss, eps: 1e-3, atol: 1e-7, rtol: 1e-4 });
      t.ok(res.worst <= 1, `cispo ${agg}: worst ${res.worst.toFixed(3)} at ${res.index}`);
    }
  }
});

t.test('an empty mask gives loss 0, zero gradients and no NaN', async (t) => {
  const x = batch(400);
  x.mask.fill(0);
  for (const kind of KINDS)
    for (const agg of AGGS) {
      const r = policyLoss(x, { ...baseOptions(kind, agg, 'low_var_kl'), globalTokens: 0 });
      t.equal(r.loss, 0, `${kind} ${agg}: loss 0`);
      t.ok(
        Object.values(r.metrics).every((v) => v === 0),
        `${kind} ${agg}: metrics all 0`,
      );
      t.ok(r.dlogp.every((v) => v === 0) && r.dentropy!.every((v) => v === 0), `${kind} ${agg}: gradients all 0`);
    }
});

t.test('all-zero advantages give no policy gradient', async (t) => {
  const x = batch(401);
  x.advantages.fill(0);
  for (const kind of KINDS)
    for (const agg of AGGS) {
      const r = policyLoss(x, baseOptions(kind, agg));
      t.equal(r.metrics.pg_loss, 0, `${kind} ${agg}: pg_loss 0`);
      t.ok(
        r.dlogp.every((v) => v === 0),
        `${kind} ${agg}: dlogp 0`,
      );
    }
});

t.test('extreme log-ratios stay finite', async (t) => {
  const x = batch(402);
  for (let i = 0; i < x.logp.length; i++) {
    const sign = i % 2 ? 1 : -1;
    x.oldLogp[i] = x.logp[i] - sign * 50;
    x.refLogp![i] = x.logp[i] + sign * 50;
  }
  for (const kind of KINDS)
    for (const kl of KLS) {
      const o = { ...baseOptions(kind, 'seq-mean-token-mean', kl), dualClip: kind === 'ppo' ? 3 : 0 };
      const r = policyLoss(x, o);
      const finite = [r.loss, ...Object.values(r.metrics), ...r.dlogp].every(Number.isFinite);
      t.ok(finite, `${kind} kl=${kl}: loss, metrics and dlogp finite`);
      compare(t, r, refPolicyLoss(x, o), `${kind} kl=${kl} at log-ratios ±50`);
    }
  // Whole sequences at +50: GSPO's sequence log-ratio hits its clamp at 10.
  x.oldLogp.set(x.logp.map((v) => v - 50));
  const gspo = policyLoss(x, baseOptions('gspo', 'seq-mean-token-mean'));
  t.ok(Number.isFinite(gspo.loss) && gspo.dlogp.every(Number.isFinite), 'gspo at a clamped sequence ratio is finite');
});

t.test('global normalisers: micro-batches add up to the full batch', async (t) => {
  const x = batch(500, [6, 9, 0, 5, 8, 7, 3]);
  const cut = 3; // the first three sequences form micro-batch A, the rest B
  const split = (from: number, to: number): PolicyLossInputs => {
    const b = x.cuSeqlens[from],
      e = x.cuSeqlens[to];
    const pick = (a: Float32Array) => a.slice(b, e);
    return {
      logp: pick(x.logp),
      oldLogp: pick(x.oldLogp),
      refLogp: pick(x.refLogp!),
      advantages: pick(x.advantages),
      mask: pick(x.mask),
      entropy: pick(x.entropy!),
      cuSeqlens: x.cuSeqlens.slice(from, to + 1).map((c) => c - b),
    };
  };
  const a = split(0, cut),
    b = split(cut, x.cuSeqlens.length - 1);
  const globalTokens = x.mask.reduce((s, v) => s + v, 0);
  const globalSeqs = sequences(x.cuSeqlens).filter(([s, e]) => x.mask.slice(s, e).some((v) => v > 0)).length;
  for (const kind of KINDS)
    for (const agg of AGGS) {
      const o = { ...baseOptions(kind, agg, 'low_var_kl'), globalTokens, globalSeqs };
      const full = policyLoss(x, baseOptions(kind, agg, 'low_var_kl'));
      const ra = policyLoss(a, o),
        rb = policyLoss(b, o);
      assertClose(t, [ra.loss + rb.loss], [full.loss], 1e-12, 1e-10, `${kind} ${agg}: loss sums`);
      assertClose(t, [...ra.dlogp, ...rb.dlogp], full.dlogp, 1e-12, 1e-6, `${kind} ${agg}: dlogp concatenates`);
      assertClose(
        t,
        [...ra.dentropy!, ...rb.dentropy!],
        full.dentropy!,
        1e-12,
        1e-6,
        `${kind} ${agg}: dentropy concatenates`,
      );
      t.equal(ra.metrics.tokens + rb.metrics.tokens, globalTokens, `${kind} ${agg}: token counts add up`);
    }
});

t.test('bad input throws a clear error', async (t) => {
  const x = batch(600);
  const o = baseOptions('ppo', 'token-mean', 'k1');
  const T = x.logp.length;
  t.throws(
    () => policyLoss({ ...x, logp: [1, 2] as unknown as Float32Array }, o),
    /policyLoss: inputs.logp must be a Float32Array \(got a plain Array\)/,
  );
  t.throws(
    () => policyLoss({ ...x, oldLogp: x.oldLogp.slice(1) }, o),
    new RegExp(`policyLoss: inputs.oldLogp must have length ${T} \\(T = logp.length\\), got ${T - 1}`),
  );
  const nanAdv = x.advantages.slice();
  nanAdv[5] = NaN;
  t.throws(
    () => policyLoss({ ...x, advantages: nanAdv }, o),
    /policyLoss: inputs.advantages contains a non-finite value \(NaN\) at index 5/,
  );
  const halfMask = x.mask.slice();
  halfMask[3] = 0.5;
  t.throws(() => policyLoss({ ...x, mask: halfMask }, o), /policyLoss: inputs.mask\[3\] must be 0 or 1, got 0.5/);
  t.throws(
    () => policyLoss({ ...x, cuSeqlens: Int32Array.of(0, 5) }, o),
    new RegExp(`policyLoss: inputs.cuSeqlens must end at the token count ${T}, got 5`),
  );
  t.throws(() => policyLoss({ ...x, refLogp: undefined }, o), /policyLoss: option kl 'k1' needs inputs.refLogp/);
  t.throws(
    () => policyLoss({ ...x, entropy: undefined }, o),
    /policyLoss: option 'entropyCoef' != 0 needs inputs.entropy/,
  );
  t.throws(
    () => policyLoss(x, { ...o, kind: 'grpo' as PolicyLossKind }),
    /policyLoss: option 'kind' must be one of 'ppo', 'gspo', 'cispo', got 'grpo'/,
  );
  t.throws(
    () => policyLoss(x, { ...o, kind: undefined as unknown as PolicyLossKind }),
    /policyLoss: option 'kind' is required/,
  );
  t.throws(() => policyLoss(x, { ...o, agg: 'mean' as LossAgg }), /policyLoss: option 'agg' must be one of/);
  t.throws(() => policyLoss(x, { ...o, kl: 'k2' as KlEstimator }), /policyLoss: option 'kl' must be one of/);
  t.throws(() => policyLoss(x, { ...o, clipLow: 1 }), /policyLoss: option 'clipLow' must be in \[0, 1\)/);
  t.throws(() => policyLoss(x, { ...o, clipHigh: -0.1 }), /policyLoss: option 'clipHigh' must be >= 0/);
  t.throws(() => policyLoss(x, { ...o, dualClip: 0.5 }), /policyLoss: option 'dualClip' must be 0 \(off\) or > 1/);
  t.throws(
    () => policyLoss(x, { ...o, kind: 'gspo', dualClip: 3 }),
    /policyLoss: option 'dualClip' applies to kind 'ppo' only/,
  );
  t.throws(() => policyLoss(x, { ...o, globalTokens: -1 }), /policyLoss: option 'globalTokens' must be >= 0/);
  t.throws(() => policyLoss(x, { ...o, klCoef: NaN }), /policyLoss: option 'klCoef' must be finite/);
});
