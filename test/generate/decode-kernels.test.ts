// The few-row product that decoding runs its linear layers and head through (native/core/gemv.h,
// used by linearForward up to 128 rows): values against a float64 reference, and the property
// generation relies on for reproducibility: a row's result does not depend on the other rows of
// the batch or on the thread count, bit for bit; so a request's tokens and log-probs are the same
// alone or batched with others.
import t from 'tap';

import { linearForward } from '../../src/engine/layers.js';
import { setThreads, threads } from '../../src/engine/system.js';
import { FEW_ROW_MAX_TOKENS, fewRowGroups, Qwen3GenerationEngine } from '../../src/generate/engine.js';
import { assertClose, randn, rng, sameBits } from '../helpers/numeric.js';
import { tinyModel } from './helpers.js';

function reference(x: Float32Array, W: Float32Array, T: number, K: number, N: number): Float64Array {
  const y = new Float64Array(T * N);
  for (let m = 0; m < T; m++)
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * W[n * K + k];
      y[m * N + n] = s;
    }
  return y;
}

// Row counts that reach every register tile (4-row groups, then 3, 2 or 1 left) and the largest
// batch the kernel serves; K and N not multiples of the vector width or of the tile widths.
const rowCounts = [1, 2, 3, 4, 5, 6, 7, 9, 33, 128];
const K = 75;
const N = 67;

t.test('few-row products match the float64 reference', async (t) => {
  const r = rng(11);
  const W = randn(N * K, r);
  for (const T of rowCounts) {
    const x = randn(T * K, r);
    // float32 sum of K terms in (-1, 1): within K * 2^-24 * K of the exact value in any order.
    assertClose(
      t,
      linearForward(x, W, null, { T, in: K, out: N }),
      reference(x, W, T, K, N),
      (K * K) / 2 ** 24,
      0,
      `${T} rows`,
    );
  }
  const b = randn(N, r);
  const x = randn(3 * K, r);
  const withBias = linearForward(x, W, b, { T: 3, in: K, out: N });
  const ref = reference(x, W, 3, K, N).map((v, i) => v + b[i % N]);
  assertClose(t, withBias, ref, (K * (K + 1)) / 2 ** 24, 0, 'with a bias');
});

t.test("a row's result is the same bits whatever the other rows and the thread count", async (t) => {
  const r = rng(12);
  const W = randn(N * K, r);
  const x = randn(128 * K, r);
  const alone = Array.from({ length: 128 }, (_, m) =>
    linearForward(x.subarray(m * K, (m + 1) * K), W, null, { T: 1, in: K, out: N }),
  );
  for (const T of rowCounts) {
    const y = linearForward(x.subarray(0, T * K), W, null, { T, in: K, out: N });
    const differing = alone.slice(0, T).filter((row, m) => !sameBits(row, y.subarray(m * N, (m + 1) * N))).length;
    t.equal(differing, 0, `${T} rows batched: rows that differ from the row alone`);
  }
  const before = threads();
  const many = linearForward(x, W, null, { T: 128, in: K, out: N });
  setThreads(1);
  try {
    t.ok(sameBits(linearForward(x, W, null, { T: 128, in: K, out: N }), many), `1 thread gives the bits of ${before}`);
  } finally {
    setThreads(before);
  }
});

t.test('a seeded request decodes the same tokens and log-probs, bit for bit, alone or batched', async (t) => {
  const model = tinyModel(8);
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  const request = {
    promptIds: [3, 14, 15, 9, 26],
    params: { temperature: 0.9, topP: 0.95, n: 2, maxNewTokens: 10, seed: 42, ignoreEos: true },
  };
  const alone = await engine.generate(request);
  // Started together: the prefills share a step, then the decodes run as one batch of 2 + 3 + 1 rows.
  const [batched] = await Promise.all([
    engine.generate(request),
    engine.generate({ promptIds: [1, 2, 3, 4, 5, 6, 7], params: { n: 3, maxNewTokens: 12, seed: 1, ignoreEos: true } }),
    engine.generate({ promptIds: [40], params: { temperature: 0, maxNewTokens: 8, ignoreEos: true } }),
  ]);
  await engine.close();
  for (const [j, s] of alone.samples.entries()) {
    t.same(batched.samples[j].tokenIds, s.tokenIds, `sample ${j}: tokens`);
    t.ok(
      sameBits(Float32Array.from(batched.samples[j].logprobs), Float32Array.from(s.logprobs)),
      `sample ${j}: log-probs, bit for bit`,
    );
  }
});

// A long prompt (more than FEW_ROW_MAX_TOKENS tokens) prefilled in the same step as a request's
// decode rows would, in one forward, move every row of that step to the GEMM: the engine runs it
// in a forward of its own so the decoding rows keep the few-row kernel, and their bits.
t.test(
  'a seeded request gives the same bits alone or beside a prompt of more than 128 tokens being prefilled',
  async (t) => {
    const model = tinyModel(8);
    const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
    t.teardown(() => engine.close());
    const request = {
      promptIds: [3, 14, 15, 9, 26],
      params: { temperature: 0.8, n: 2, maxNewTokens: 12, seed: 7, ignoreEos: true },
    };
    const alone = await engine.generate(request);
    const long = Array.from({ length: FEW_ROW_MAX_TOKENS + 72 }, (_, i) => 1 + ((i * 7) % 40));
    t.ok(long.length > 128, `the other prompt has ${long.length} tokens`);
    // The long prompt is submitted once the seeded request has drawn its first token, so its prefill
    // shares a step with the seeded request's decode rows; and once more together with it.
    let longRun: Promise<unknown> | undefined;
    const decoding = engine.generate({
      ...request,
      onToken: () => {
        longRun ??= engine.generate({ promptIds: long, params: { n: 2, maxNewTokens: 4, seed: 3, ignoreEos: true } });
      },
    });
    const [beside] = await Promise.all([
      decoding,
      engine.generate({ promptIds: long, params: { maxNewTokens: 2, temperature: 0 } }),
    ]);
    await longRun;
    const together = await Promise.all([
      engine.generate(request),
      engine.generate({ promptIds: long, params: { maxNewTokens: 3, ignoreEos: true, seed: 5 } }),
    ]);
    for (const [label, got] of [
      ['beside a prefill', beside],
      ['submitted with it', together[0]],
    ] as const)
      for (const [j, s] of alone.samples.entries()) {
        t.same(got.samples[j].tokenIds, s.tokenIds, `${label}, sample ${j}: tokens`);
        t.ok(
          sameBits(Float32Array.from(got.samples[j].logprobs), Float32Array.from(s.logprobs)),
          `${label}, sample ${j}: log-probs, bit for bit`,
        );
      }
  },
);

t.test('a step is split into forwards of at most 128 tokens, a longer prompt alone', async (t) => {
  const parts = (sizes: number[]) => sizes.map((n) => ({ ids: new Array(n).fill(1) }));
  const sizes = (groups: { ids: unknown[] }[][]) => groups.map((g) => g.map((p) => p.ids.length));
  t.same(sizes(fewRowGroups(parts([1, 1, 1]))), [[1, 1, 1]]);
  t.same(sizes(fewRowGroups(parts([1, 1, 200, 5]))), [[1, 1], [200], [5]]);
  t.same(sizes(fewRowGroups(parts([100, 28, 1]))), [[100, 28], [1]]);
  t.same(
    sizes(fewRowGroups(parts(new Array(130).fill(1)))),
    [new Array(128).fill(1), [1, 1]],
    'more than 128 decode rows: chunks of 128',
  );
});
