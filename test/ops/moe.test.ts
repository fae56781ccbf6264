// Mixture-of-experts block (router linear, softmax, top-k with optional renormalisation, SwiGLU
// experts over tokens grouped by expert, weighted combination) and transformers' load-balancing
// loss: forward against a float64 reference written from the definitions, the grouping's order,
// finite-difference gradients of every input, determinism across thread counts, bad input; the
// routing time counter the benchmark reads.
import t from 'tap';

import {
  moeAuxLoss,
  moeBlockBackward,
  moeBlockForward,
  moeRoutingSeconds,
  type MoeBlockOptions,
} from '../../src/engine/moe.js';
import { cudaDevices, setThreads, threads } from '../../src/engine/system.js';
import { assertClose, dot, gradcheck, randn, rng, sameBits } from '../helpers/numeric.js';

const silu = (g: number) => g / (1 + Math.exp(-g));

function softmax(row: ArrayLike<number>): number[] {
  const m = Math.max(...Array.from(row));
  const e = Array.from(row, (v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

// Top-k by descending probability, lower index first on ties.
function topk(p: number[], k: number): number[] {
  return p
    .map((v, i) => [v, i])
    .sort((a, b) => b[0] - a[0] || a[1] - b[1])
    .slice(0, k)
    .map((a) => a[1]);
}

interface Inputs {
  x: Float32Array;
  router: Float32Array;
  gateUp: Float32Array;
  down: Float32Array;
  o: MoeBlockOptions;
}

function inputs(seed: number, o: MoeBlockOptions): Inputs {
  const r = rng(seed);
  const { tokens: T, hidden: H, intermediate: I, experts: E } = o;
  return {
    x: randn(T * H, r),
    router: randn(E * H, r),
    gateUp: randn(E * 2 * I * H, r, -0.5, 0.5),
    down: randn(E * H * I, r, -0.5, 0.5),
    o,
  };
}

// out[t] = sum_k w_k * down_e(silu(gate_e x) * up_e x), in float64 straight from the definition.
function refForward({ x, router, gateUp, down, o }: Inputs) {
  const { tokens: T, hidden: H, intermediate: I, experts: E, topK: K } = o;
  const out = new Float64Array(T * H);
  const experts: number[][] = [];
  for (let t = 0; t < T; t++) {
    const logits = Array.from({ length: E }, (_, e) =>
      dot(x.subarray(t * H, (t + 1) * H), router.subarray(e * H, (e + 1) * H)),
    );
    const p = softmax(logits);
    const pick = topk(p, K);
    experts.push(pick);
    const total = pick.reduce((s, e) => s + p[e], 0);
    for (const e of pick) {
      const w = (o.normTopk ?? true) ? p[e] / total : p[e];
      const act = new Float64Array(I);
      for (let i = 0; i < I; i++) {
        let g = 0,
          u = 0;
        for (let h = 0; h < H; h++) {
          g += gateUp[(e * 2 * I + i) * H + h] * x[t * H + h];
          u += gateUp[(e * 2 * I + I + i) * H + h] * x[t * H + h];
        }
        act[i] = silu(g) * u;
      }
      for (let h = 0; h < H; h++) {
        let y = 0;
        for (let i = 0; i < I; i++) y += down[(e * H + h) * I + i] * act[i];
        out[t * H + h] += w * y;
      }
    }
  }
  return { out, experts };
}

const shapes: MoeBlockOptions[] = [
  { tokens: 7, hidden: 6, intermediate: 5, experts: 4, topK: 2, normTopk: true },
  { tokens: 9, hidden: 8, intermediate: 3, experts: 6, topK: 3, normTopk: false },
  { tokens: 300, hidden: 16, intermediate: 8, experts: 8, topK: 2, normTopk: true },
];

t.test('forward matches the float64 definition; assignments grouped by expert, stable', async (t) => {
  for (const [i, o] of shapes.entries()) {
    const inp = inputs(10 + i, o);
    const got = moeBlockForward(inp.x, inp.router, inp.gateUp, inp.down, o);
    const ref = refForward(inp);
    const tag = `T=${o.tokens} E=${o.experts} K=${o.topK} norm=${o.normTopk}`;
    t.same(Array.from(got.experts), ref.experts.flat(), `${tag}: top-k experts`);
    assertClose(t, got.out, ref.out, 1e-5, 1e-4, `${tag}: output`);
    const { offsets, order } = got;
    t.equal(offsets[0], 0, `${tag}: offsets start at 0`);
    t.equal(offsets[o.experts], o.tokens * o.topK, `${tag}: every assignment is placed once`);
    let ok = true;
    for (let e = 0; e < o.experts; e++)
      for (let r = offsets[e]; r < offsets[e + 1]; r++) {
        if (got.experts[order[r]] !== e) ok = false; // in its expert's run
        if (r > offsets[e] && order[r] <= order[r - 1]) ok = false; // ascending within the run
      }
    t.ok(ok, `${tag}: order holds each expert's assignments in ascending order`);
  }
});

t.test('gradients of x, router, gate_up and down match finite differences', async (t) => {
  for (const [i, o] of shapes.slice(0, 2).entries()) {
    const inp = inputs(20 + i, o);
    const dout = randn(o.tokens * o.hidden, rng(30 + i));
    const g = moeBlockBackward(dout, inp.x, inp.router, inp.gateUp, inp.down, o);
    const picks = Array.from(moeBlockForward(inp.x, inp.router, inp.gateUp, inp.down, o).experts).join();
    // The routing is piecewise constant: a step that changes a token's experts is no derivative.
    const loss = () => {
      const f = moeBlockForward(inp.x, inp.router, inp.gateUp, inp.down, o);
      if (Array.from(f.experts).join() !== picks) throw new Error('a finite-difference step changed the routing');
      return dot(f.out, dout);
    };
    const tag = `K=${o.topK} norm=${o.normTopk}`;
    for (const [name, param, grad] of [
      ['x', inp.x, g.dx],
      ['router', inp.router, g.dRouter],
      ['gate_up', inp.gateUp, g.dGateUp],
      ['down', inp.down, g.dDown],
    ] as const) {
      const r = gradcheck({ param, grad, loss, eps: 1e-3, atol: 2e-3, rtol: 1e-2, samples: 60, seed: 3 });
      t.ok(r.worst <= 1, `${tag}: d/d${name} (worst ${r.worst.toFixed(3)} x tolerance at ${r.index})`);
    }
  }
});

t.test('load-balancing loss: transformers formula and its gradient', async (t) => {
  const T = 11,
    E = 6,
    K = 2,
    L = 3;
  const cu = Int32Array.from([0, 4, 4, 11]); // one empty sequence
  // Each row a shuffle of well-separated levels (gaps >= 0.2), so no finite-difference step can
  // change the top-k picks, which are not differentiable.
  const r = rng(5);
  const logits = new Float32Array(L * T * E);
  for (let row = 0; row < L * T; row++) {
    const levels = Array.from({ length: E }, (_, e) => 0.4 * e + 0.2 * (r() - 0.5)).sort(() => r() - 0.5);
    logits.set(levels, row * E);
  }
  const got = moeAuxLoss(logits, cu, { tokens: T, experts: E, topK: K, layers: L });
  for (let s = 0; s + 1 < cu.length; s++) {
    const n = (cu[s + 1] - cu[s]) * L;
    const f = new Float64Array(E),
      P = new Float64Array(E);
    for (let l = 0; l < L; l++)
      for (let tk = cu[s]; tk < cu[s + 1]; tk++) {
        const p = softmax(logits.subarray((l * T + tk) * E, (l * T + tk + 1) * E));
        for (const e of topk(p, K)) f[e] += 1 / n;
        p.forEach((v, e) => (P[e] += v / n));
      }
    const expected = n ? E * f.reduce((a, v, e) => a + v * P[e], 0) : 0;
    t.ok(Math.abs(got.loss[s] - expected) <= 1e-6, `sequence ${s}: loss ${got.loss[s]} vs ${expected}`);
  }
  const picks = (l: Float32Array) => {
    const out: number[] = [];
    for (let r = 0; r < L * T; r++) out.push(...topk(softmax(l.subarray(r * E, (r + 1) * E)), K));
    return out.join();
  };
  const base = picks(logits);
  const loss = () => {
    if (picks(logits) !== base) throw new Error('a finite-difference step changed the routing');
    return moeAuxLoss(logits, cu, { tokens: T, experts: E, topK: K, layers: L }).loss.reduce((a, b) => a + b, 0);
  };
  const fd = gradcheck({
    param: logits,
    grad: got.dLogits,
    loss,
    eps: 1e-3,
    atol: 1e-4,
    rtol: 1e-2,
    samples: 80,
    seed: 9,
  });
  t.ok(fd.worst <= 1, `d(sum of losses)/d logits (worst ${fd.worst.toFixed(3)} x tolerance)`);
});

t.test('results do not depend on the thread count', async (t) => {
  const o = shapes[2];
  const inp = inputs(40, o);
  const dout = randn(o.tokens * o.hidden, rng(41));
  const before = threads();
  const run = () => ({
    f: moeBlockForward(inp.x, inp.router, inp.gateUp, inp.down, o),
    g: moeBlockBackward(dout, inp.x, inp.router, inp.gateUp, inp.down, o),
  });
  setThreads(1);
  const one = run();
  setThreads(2);
  const two = run();
  setThreads(before);
  t.ok(sameBits(one.f.out, two.f.out), 'forward output bit-identical');
  for (const k of ['dx', 'dRouter', 'dGateUp', 'dDown'] as const)
    t.ok(sameBits(one.g[k], two.g[k]), `${k} bit-identical`);
});

t.test('bad input is refused naming the argument', async (t) => {
  const o = shapes[0];
  const inp = inputs(50, o);
  t.throws(() => moeBlockForward(inp.x.subarray(1), inp.router, inp.gateUp, inp.down, o), /x/);
  t.throws(() => moeBlockForward(inp.x, inp.router, inp.gateUp, inp.down, { ...o, topK: 5 }), /topK/);
  t.throws(
    () => moeAuxLoss(new Float32Array(6), Int32Array.from([0, 2]), { tokens: 1, experts: 6, topK: 2, layers: 1 }),
    /cuSeqlens/,
  );
  const aux = { tokens: 1, experts: 6, topK: 2, layers: 1 };
  const [logits, cu] = [randn(6, rng(51)), Int32Array.from([0, 1])];
  t.same(
    moeAuxLoss(logits, cu, { ...aux, backend: 'cpu' }),
    moeAuxLoss(logits, cu, aux),
    "backend 'cpu' is the default",
  );
  t.throws(() => moeAuxLoss(logits, cu, { ...aux, backend: 'tpu' as 'cpu' }), /backend/);
  // The device path on CUDA's memory contract over the CPU ops: the same loss and gradient, bit for bit.
  const many = { tokens: 40, experts: 8, topK: 3, layers: 2 };
  const [routerLogits, seqs] = [randn(2 * 40 * 8, rng(52)), Int32Array.from([0, 15, 40])];
  t.same(
    moeAuxLoss(routerLogits, seqs, { ...many, backend: 'cuda-guard' }),
    moeAuxLoss(routerLogits, seqs, many),
    'on the device-memory guard: the CPU loss and gradient',
  );
  if (cudaDevices().count === 0) t.throws(() => moeAuxLoss(logits, cu, { ...aux, backend: 'cuda' }), /cuda|CUDA/);
});

t.test('the routing time counter: counts what a block spends routing, and restarts when read', async (t) => {
  const inp = inputs(40, shapes[2]);
  moeRoutingSeconds();
  t.equal(moeRoutingSeconds(), 0, 'nothing routed since the last read');
  moeBlockForward(inp.x, inp.router, inp.gateUp, inp.down, inp.o);
  const forward = moeRoutingSeconds();
  t.ok(forward > 0, `a forward routes (${forward.toExponential(2)} s)`);
  moeBlockBackward(new Float32Array(inp.x.length).fill(1), inp.x, inp.router, inp.gateUp, inp.down, inp.o);
  t.ok(moeRoutingSeconds() > 0, 'a backward routes');
  t.equal(moeRoutingSeconds(), 0, 'read, it restarts from 0');
});
