// The native sampler against a direct JS implementation of its filters on small vocabularies: the
// kept set and probabilities exactly, the draws empirically, the returned log-probs, and the
// reproducibility of each sample's random stream.
import t from 'tap';

import { samplingDistribution, sampleLogits } from '../../src/generate/native-generator.js';
import type { NativeSamplerParams } from '../../src/generate/native-generator.js';
import { cudaDevices } from '../../src/engine/system.js';
import { randn, rng } from '../helpers/numeric.js';
import { Qwen3GenerationEngine } from '../../src/generate/engine.js';
import { tinyConfig, tinyModel } from './helpers.js';

/** The sampler's documented pipeline written out plainly: penalty, temperature, top-k, top-p, min-p. */
function referenceDistribution(
  logits: Float32Array,
  p: NativeSamplerParams,
  history: number[] = [],
): Map<number, number> {
  const V = logits.length;
  const seen = new Set(history);
  const pen = p.repetitionPenalty ?? 1;
  const l = Array.from(logits, (x, i) => (seen.has(i) ? (x > 0 ? x / pen : x * pen) : x));
  if (p.temperature === 0) {
    let best = 0;
    for (let i = 1; i < V; i++) if (l[i] > l[best]) best = i;
    return new Map([[best, 1]]);
  }
  const w = l.map((x) => x / p.temperature);
  let kept = [...Array(V).keys()].sort((a, b) => w[b] - w[a] || a - b);
  const softmax = (ids: number[]) => {
    const m = Math.max(...ids.map((i) => w[i]));
    const e = ids.map((i) => Math.exp(w[i] - m));
    const s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  };
  if ((p.topK ?? 0) > 0 && p.topK! < V) kept = kept.slice(0, p.topK);
  if ((p.topP ?? 1) < 1) {
    const probs = softmax(kept);
    let cum = 0;
    let n = 0;
    while (n < kept.length && cum < p.topP!) cum += probs[n++];
    kept = kept.slice(0, Math.max(n, 1));
  }
  if ((p.minP ?? 0) > 0) {
    const probs = softmax(kept);
    const top = Math.max(...probs);
    kept = kept.filter((_, j) => probs[j] >= p.minP! * top);
  }
  const probs = softmax(kept);
  return new Map(kept.map((id, j) => [id, probs[j]]));
}

function logSoftmax(logits: Float32Array, temperature: number): number[] {
  const z = Array.from(logits, (x) => x / temperature);
  const m = Math.max(...z);
  const lse = m + Math.log(z.reduce((s, x) => s + Math.exp(x - m), 0));
  return z.map((x) => x - lse);
}

const cases: [string, NativeSamplerParams, number[]?][] = [
  ['plain temperature 0.7', { temperature: 0.7 }],
  ['top-k 5', { temperature: 1, topK: 5 }],
  ['top-p 0.6', { temperature: 1, topP: 0.6 }],
  ['top-p 0.95 at temperature 0.5', { temperature: 0.5, topP: 0.95 }],
  ['min-p 0.2', { temperature: 1, minP: 0.2 }],
  ['repetition penalty 1.8', { temperature: 1, repetitionPenalty: 1.8 }, [1, 3, 3, 7, 12, 20]],
  ['all filters', { temperature: 0.8, topK: 12, topP: 0.9, minP: 0.05, repetitionPenalty: 1.3 }, [0, 2, 4, 6]],
  ['greedy with penalty', { temperature: 0, repetitionPenalty: 3 }, [5, 9]],
];

t.test('the kept set and its probabilities equal the JS reference', async (t) => {
  const r = rng(7);
  for (const [name, params, history] of cases) {
    for (let trial = 0; trial < 5; trial++) {
      const logits = randn(24, r, -3, 3);
      if (history) history.forEach((id) => (logits[id] = Math.abs(logits[id]) + 2)); // make the penalty matter
      const want = referenceDistribution(logits, params, history);
      const got = samplingDistribution(logits, params, history ? Int32Array.from(history) : undefined);
      t.same(
        [...got.ids],
        [...want.keys()].sort((a, b) => a - b),
        `${name} #${trial}: kept ids`,
      );
      let worst = 0;
      got.ids.forEach((id, j) => (worst = Math.max(worst, Math.abs(got.probs[j] - want.get(id)!))));
      t.ok(worst < 1e-6, `${name} #${trial}: probabilities within 1e-6 (worst ${worst.toExponential(2)})`);
    }
  }
});

t.test('top-p over 5,000 near-flat logits (the kept set needs several rounds of partial sorting)', async (t) => {
  const logits = randn(5000, rng(21), -0.5, 0.5);
  for (const params of [
    { temperature: 1, topP: 0.9 },
    { temperature: 0.7, topP: 0.5, topK: 3000 },
  ]) {
    const want = referenceDistribution(logits, params);
    const got = samplingDistribution(logits, params);
    t.ok(want.size > 256, `${JSON.stringify(params)}: the reference keeps ${want.size} tokens`);
    t.same(
      [...got.ids],
      [...want.keys()].sort((a, b) => a - b),
      'same kept ids',
    );
  }
});

t.test('ties at the cut: lower ids first, on 3,000 logits with few distinct values (and -0 next to +0)', async (t) => {
  const r = rng(31);
  // Values on a grid of 0.25: hundreds of ids share each value, so every cut falls inside a tie group.
  const logits = Float32Array.from(randn(3000, r, -2, 2), (x) => Math.round(x * 4) / 4);
  logits.forEach((x, i) => {
    if (x === 0 && i % 2 === 1) logits[i] = -0;
  });
  for (const params of [
    { temperature: 1, topK: 1001 },
    { temperature: 1, topP: 0.37 },
    { temperature: 0.6, topK: 2200, topP: 0.8 },
    { temperature: 1.4, topP: 0.9, minP: 0.5 },
    { temperature: 1, topK: 1500, minP: 0.6 },
  ]) {
    const want = referenceDistribution(logits, params);
    const got = samplingDistribution(logits, params);
    t.same(
      [...got.ids],
      [...want.keys()].sort((a, b) => a - b),
      `${JSON.stringify(params)}: kept ids (${want.size})`,
    );
    let worst = 0;
    got.ids.forEach((id, j) => (worst = Math.max(worst, Math.abs(got.probs[j] - want.get(id)!))));
    t.ok(worst < 1e-6, `${JSON.stringify(params)}: probabilities within 1e-6 (worst ${worst.toExponential(2)})`);
  }
});

t.test('draws follow the kept distribution (20,000 draws, total variation < 0.02)', async (t) => {
  const V = 10;
  const logits = randn(V, rng(3), -2, 2);
  for (const params of [
    { temperature: 1 },
    { temperature: 0.9, topK: 4 },
    { temperature: 1.2, topP: 0.8, minP: 0.1 },
  ]) {
    const draws = 20000;
    const rows = new Float32Array(draws * V);
    for (let i = 0; i < draws; i++) rows.set(logits, i * V);
    // One sample's stream: the same seed and stream, successive counters.
    const sampling = Array.from({ length: draws }, (_, i) => ({ ...params, seed: 11, stream: 0, counter: i }));
    const { tokens } = sampleLogits(rows, V, sampling);
    const counts = new Array(V).fill(0);
    tokens.forEach((id) => counts[id]++);
    const want = referenceDistribution(logits, params);
    let tv = 0;
    for (let id = 0; id < V; id++) tv += Math.abs(counts[id] / draws - (want.get(id) ?? 0));
    tv /= 2;
    t.ok(tv < 0.02, `${JSON.stringify(params)}: total variation ${tv.toFixed(4)}`);
    t.ok(
      tokens.every((id) => want.has(id)),
      'every draw is in the kept set',
    );
  }
});

t.test(
  'over a full 151,936-token vocabulary the tail of many unlikely tokens is drawn at its total mass',
  async (t) => {
    // One likely token (id 7) and 151,935 tokens at logit -14 (p = 8.3e-7 each, 0.11 together): the
    // draw's block search runs over 2,374 blocks, where a small vocabulary has one. Each such token is
    // "near impossible" alone, yet one of them is drawn about once in nine: a rollout that starts with
    // a token of log-prob -14 or below is the sampler working, not a fault.
    const V = 151_936;
    const low = -14;
    const chunk = 250;
    const rounds = 8;
    // Each tail token's log-prob, directly: low - log(1 + (V - 1) e^low).
    const tailLogp = low - Math.log(1 + (V - 1) * Math.exp(low));
    let tail = 0;
    let idSum = 0;
    for (let r = 0; r < rounds; r++) {
      const rows = new Float32Array(chunk * V).fill(low);
      for (let i = 0; i < chunk; i++) rows[i * V + 7] = 0;
      const sampling = Array.from({ length: chunk }, (_, i) => ({
        temperature: 1,
        seed: 5,
        stream: 1,
        counter: r * chunk + i,
      }));
      const { tokens, logprobs } = sampleLogits(rows, V, sampling);
      tokens.forEach((id, i) => {
        if (id === 7) return;
        tail++;
        idSum += id;
        if (Math.abs(logprobs[i] - tailLogp) > 1e-4)
          t.fail(`draw ${r * chunk + i}: log-prob ${logprobs[i]} of token ${id}`);
      });
    }
    const draws = chunk * rounds;
    const mass = ((V - 1) * Math.exp(low)) / (1 + (V - 1) * Math.exp(low));
    const sd = Math.sqrt(draws * mass * (1 - mass));
    t.ok(
      Math.abs(tail - draws * mass) < 5 * sd,
      `${tail} tail draws of ${draws}, expected ${(draws * mass).toFixed(1)}`,
    );
    // Uniform over the tail's ids: the mean id within 5 standard errors of the middle.
    const se = V / Math.sqrt(12) / Math.sqrt(tail);
    t.ok(Math.abs(idSum / tail - V / 2) < 5 * se, `mean tail id ${(idSum / tail).toFixed(0)}, uniform gives ${V / 2}`);
  },
);

t.test('log-probs are those of softmax(logits / temperature), before penalty and truncation', async (t) => {
  const V = 30;
  const logits = randn(V, rng(5), -4, 4);
  const history = Int32Array.from([0, 1, 2]);
  for (const params of [
    { temperature: 0.6, topK: 3, repetitionPenalty: 2, seed: 1 },
    { temperature: 1.5, topP: 0.5, minP: 0.3, seed: 2 },
  ]) {
    const { tokens, logprobs } = sampleLogits(logits, V, [params], [history]);
    const ref = logSoftmax(logits, params.temperature);
    t.ok(
      Math.abs(logprobs[0] - ref[tokens[0]]) < 1e-5,
      `${JSON.stringify(params)}: ${logprobs[0]} vs ${ref[tokens[0]]}`,
    );
  }
  const greedy = sampleLogits(logits, V, [{ temperature: 0 }]);
  t.ok(
    Math.abs(greedy.logprobs[0] - logSoftmax(logits, 1)[greedy.tokens[0]]) < 1e-5,
    'greedy: log-prob at temperature 1',
  );
});

t.test("a sample's draws depend only on its seed, stream and counter, not on the other rows", async (t) => {
  const V = 50;
  const r = rng(9);
  const mine = randn(V, r, -1, 1);
  const others = randn(7 * V, r, -1, 1);
  const params = { temperature: 1, seed: 1234, stream: 3, counter: 17 };
  const alone = sampleLogits(mine, V, [params]).tokens[0];
  const rows = new Float32Array(8 * V);
  rows.set(others.subarray(0, 4 * V), 0);
  rows.set(mine, 4 * V);
  rows.set(others.subarray(4 * V), 5 * V);
  const otherParams = Array.from({ length: 8 }, (_, i) => ({ temperature: 1, seed: 99, stream: i, counter: 0 }));
  otherParams[4] = params;
  t.equal(sampleLogits(rows, V, otherParams).tokens[4], alone, 'same token inside a batch of 8');
  // Different streams of one seed differ somewhere over 64 draws of a flat distribution.
  const flat = new Float32Array(64 * V);
  const a = sampleLogits(
    flat,
    V,
    Array.from({ length: 64 }, (_, i) => ({ temperature: 1, seed: 5, stream: 0, counter: i })),
  ).tokens;
  const b = sampleLogits(
    flat,
    V,
    Array.from({ length: 64 }, (_, i) => ({ temperature: 1, seed: 5, stream: 1, counter: i })),
  ).tokens;
  t.notSame([...a], [...b], 'streams 0 and 1 of one seed are different sequences');
});

t.test('bad sampler parameters are rejected with the field named', async (t) => {
  const logits = new Float32Array(8);
  t.throws(() => samplingDistribution(logits, { temperature: -1 }), /temperature must be >= 0/);
  t.throws(() => samplingDistribution(logits, { temperature: 1, topP: 0 }), /top_p must be in \(0, 1\]/);
  t.throws(() => samplingDistribution(logits, { temperature: 1, minP: 2 }), /min_p must be in \[0, 1\]/);
  t.throws(() => sampleLogits(logits, 8, [{ temperature: 1, repetitionPenalty: 0 }]), /repetition_penalty must be > 0/);
  t.throws(() => sampleLogits(logits, 3, [{ temperature: 1 }]), /multiple of vocab/);
  t.throws(
    () => sampleLogits(logits, 8, [{ temperature: 1 }], [Int32Array.from([9])]),
    /histories\[r\]\[0\] = 9 is out of range/,
  );
});

t.test('the sampler runs on the named backend: the CPU by default, an unknown or absent one refused', async (t) => {
  const V = 16;
  const logits = randn(3 * V, rng(21), -2, 2);
  const sampling = [{ temperature: 1, seed: 3 }, { temperature: 0.5, topK: 4, seed: 4 }, { temperature: 0 }];
  t.same(
    sampleLogits(logits, V, sampling, undefined, 'cpu'),
    sampleLogits(logits, V, sampling),
    "'cpu' is the default",
  );
  // The device path (logits and histories copied into backend memory, results copied back) on CUDA's
  // memory contract over the CPU sampler: the same draws, and no host access to backend memory.
  const histories = [Int32Array.from([1, 2]), new Int32Array(0), Int32Array.from([5])];
  t.same(
    sampleLogits(logits, V, sampling, histories, 'cuda-guard'),
    sampleLogits(logits, V, sampling, histories, 'cpu'),
    'on the device-memory guard: the CPU draws',
  );
  t.throws(() => sampleLogits(logits, V, sampling, undefined, 'tpu' as 'cpu'), /unknown backend 'tpu'/);
  // In this build and on this machine: no CUDA device (or no CUDA at all), said by name.
  if (cudaDevices().count === 0) t.throws(() => sampleLogits(logits, V, sampling, undefined, 'cuda'), /cuda|CUDA/);
});

t.test('temperatures below 1e-6 are greedy: the largest logit, its log-prob at temperature 1', async (t) => {
  const V = 40;
  const logits = randn(V, rng(13), -3, 3);
  const best = logits.indexOf(Math.max(...logits));
  for (const temperature of [0, 1e-12, 9.99e-7]) {
    const draws = sampleLogits(
      Float32Array.from({ length: 8 * V }, (_, i) => logits[i % V]),
      V,
      Array.from({ length: 8 }, (_, i) => ({ temperature, seed: i, stream: i, counter: i })),
    );
    t.same([...draws.tokens], new Array(8).fill(best), `temperature ${temperature}: every draw is the argmax`);
    t.ok(
      Math.abs(draws.logprobs[0] - logSoftmax(logits, 1)[best]) < 1e-5,
      `temperature ${temperature}: log-prob at temperature 1`,
    );
  }
});

t.test('a non-finite logit is refused with where it is, never sampled', async (t) => {
  for (const [bad, shown] of [
    [NaN, 'nan'],
    [Infinity, 'inf'],
    [-Infinity, '-inf'],
  ] as const) {
    const rows = randn(3 * 16, rng(2), -1, 1);
    rows[16 + 5] = bad;
    t.throws(
      () =>
        sampleLogits(
          rows,
          16,
          [0, 1, 2].map(() => ({ temperature: 0.7, seed: 1 })),
        ),
      new RegExp(`non-finite value \\(${shown}\\) at index 21`),
    );
    t.throws(
      () => samplingDistribution(rows.subarray(16, 32), { temperature: 0 }),
      new RegExp(`non-finite value \\(${shown}\\) at index 5`),
    );
  }
});

t.test('a model whose logits are not finite fails the generation with a clear error', async (t) => {
  const model = tinyModel(3);
  const head = Float32Array.from(model.getParameter('lm_head.weight'));
  // Token 5's row at the float maximum: its logit overflows (to an infinity, or NaN where they cancel).
  head.fill(3.4e38, 5 * tinyConfig.hiddenSize, 6 * tinyConfig.hiddenSize);
  model.setParameter('lm_head.weight', head);
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  t.teardown(() => engine.close());
  await t.rejects(
    engine.generate({ promptIds: [1, 2, 3], params: { temperature: 0.7, maxNewTokens: 2, seed: 1 } }),
    /sampling: row 0 logit 5 is (-?nan|-?inf) \(the model produced a non-finite logit\)/,
  );
  await t.rejects(
    engine.generate({ promptIds: [1, 2, 3], params: { temperature: 0, maxNewTokens: 2 } }),
    /logit 5 is (-?nan|-?inf)/,
    'greedy too',
  );
});

// Extreme but finite logits and temperatures: every draw must be a kept token with a finite,
// non-positive log-prob equal to log softmax(logits / temperature) of that token (computed here in
// double precision), and greedy rows must take the argmax.
t.test('fuzz: extreme logits and temperatures give finite log-probs of kept tokens', async (t) => {
  const r = rng(77);
  const scales = [1e-30, 1e-3, 1, 1e4, 1e30, 3e38];
  const temperatures = [0, 1e-7, 1e-6, 1e-3, 0.7, 1, 50, 1e6, 1e30];
  let checked = 0;
  for (let trial = 0; trial < 200; trial++) {
    const V = 1 + Math.floor(r() * 300);
    const scale = scales[trial % scales.length];
    const logits = Float32Array.from(randn(V, r, -1, 1), (x) =>
      Math.fround(Math.max(-3.4e38, Math.min(3.4e38, x * scale))),
    );
    if (trial % 7 === 0) logits.fill(logits[0]); // all tied
    const temperature = temperatures[Math.floor(r() * temperatures.length)];
    const params = {
      temperature,
      topK: trial % 3 === 0 ? 1 + Math.floor(r() * V) : 0,
      topP: trial % 4 === 0 ? 0.5 : 1,
      minP: trial % 5 === 0 ? 0.1 : 0,
      seed: trial,
    };
    const { tokens, logprobs } = sampleLogits(logits, V, [params]);
    const kept = samplingDistribution(logits, params);
    const what = `trial ${trial} (V ${V}, scale ${scale}, temperature ${temperature})`;
    if (!kept.ids.includes(tokens[0])) t.fail(`${what}: token ${tokens[0]} is not kept`);
    const tEff = temperature < 1e-6 ? 1 : temperature;
    const max = Math.max(...logits);
    let sum = 0;
    for (const x of logits) sum += Math.exp((x - max) / tEff);
    const want = (logits[tokens[0]] - max) / tEff - Math.log(sum);
    if (!Number.isFinite(logprobs[0]) || logprobs[0] > 0) t.fail(`${what}: log-prob ${logprobs[0]}`);
    else if (Number.isFinite(want) && Math.abs(logprobs[0] - want) > 1e-4 * Math.max(1, Math.abs(want)))
      t.fail(`${what}: log-prob ${logprobs[0]} vs ${want}`);
    if (temperature < 1e-6 && logits[tokens[0]] !== max)
      t.fail(`${what}: greedy took ${logits[tokens[0]]}, not the max ${max}`);
    checked++;
  }
  t.equal(checked, 200, 'every trial drew a kept token with a finite log-prob matching softmax');
});

t.test('a penalty below 1 that carries a logit past the float range keeps it at the largest float', async (t) => {
  // 3e38 / 0.5 overflows: the sampler clamps it to FLT_MAX (as kernels/sampling.cu does) instead of
  // computing with infinity - infinity, which gave token -1.
  const V = 16;
  const logits = randn(V, rng(29), -2, 2);
  logits[5] = 3e38;
  logits[9] = 2e38; // not in the history: a penalised 3e38 must still beat it
  const history = [Int32Array.from([5, 2])];
  for (const params of [
    { temperature: 0, repetitionPenalty: 0.5 },
    { temperature: 1, repetitionPenalty: 0.5, seed: 3 },
    { temperature: 0.7, topK: 4, topP: 0.9, minP: 0.1, repetitionPenalty: 0.5, seed: 4 },
  ]) {
    const { tokens, logprobs } = sampleLogits(logits, V, [params], history);
    t.equal(tokens[0], 5, `${JSON.stringify(params)}: the penalised largest logit`);
    t.ok(Number.isFinite(logprobs[0]), `${JSON.stringify(params)}: a finite log-prob (${logprobs[0]})`);
  }
});
