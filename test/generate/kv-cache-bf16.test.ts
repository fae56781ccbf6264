// The KV cache follows the compute dtype: with a bf16 compute copy K and V are stored as bf16 (half
// the bytes), and greedy decoding over that cache stays within a stated tolerance of the bf16
// compute copy's full (uncached) forward, which keeps K and V in f32.
import t from 'tap';

import { setComputeDtype } from '../../src/engine/bf16.js';
import { packSequences } from '../../src/engine/model.js';
import { Qwen3GenerationEngine } from '../../src/generate/engine.js';
import { createNativeGenerator } from '../../src/generate/native-generator.js';
import { tinyModel } from './helpers.js';

const prompt = [40, 12, 7, 7, 30, 11, 4, 19, 26, 3, 3, 45, 2, 14, 9, 16, 22, 38];

t.test('the cache is stored in the compute dtype: bf16 halves its bytes', async (t) => {
  const model = tinyModel(4); // 2 layers, 2 kv heads of 8: kv_dim 16
  const stats = (dtype: 'f32' | 'bf16') => {
    setComputeDtype(model, dtype);
    const gen = createNativeGenerator(model, 4, 10);
    try {
      return gen.stats();
    } finally {
      gen.close();
    }
  };
  const f32 = stats('f32');
  const bf16 = stats('bf16');
  t.equal(f32.cacheDtype, 'f32');
  t.equal(bf16.cacheDtype, 'bf16');
  // K and V, 2 layers, 10 blocks of 4 slots of kv_dim 16.
  t.equal(f32.cacheBytes, 2 * 2 * 10 * 4 * 16 * 4, 'f32: 4 bytes a value');
  t.equal(bf16.cacheBytes, f32.cacheBytes / 2, 'bf16: half');
});

t.test('a generator made before the dtype changed is refused by name', async (t) => {
  const model = tinyModel(4);
  setComputeDtype(model, 'f32');
  const gen = createNativeGenerator(model, 4, 10);
  setComputeDtype(model, 'bf16');
  const seq = gen.addSequence();
  await t.rejects(
    gen.step({
      tokens: Int32Array.from([1, 2]),
      seqIds: [seq],
      cuSeqlens: Int32Array.from([0, 2]),
      logitRows: Int32Array.from([1]),
      sampling: [{ temperature: 0 }],
    }),
    /the KV cache holds f32, the model computes in bf16/,
  );
  gen.close();
});

// Tolerance: the cached run differs from the full forward only by rounding each K and V value to bf16
// (relative error <= 2^-9). With initStd 0.3 the scores and values of this tiny model are O(1), so a
// layer's attention output moves by about 2^-9 of its size, and the logits (two layers, O(1) weights
// over 32 hidden units) by a few times that: a few 1e-2 at most in a log-prob. 0.05 states that
// bound; measured worst differences are near 1e-2, and an f32 cache gives < 1e-4 (engine.test.ts).
const tolerance = 0.05;

t.test('greedy decoding over a bf16 cache follows the bf16 full forward within the tolerance', async (t) => {
  for (const headDim of [8, 12]) {
    const model = tinyModel(2, { headDim });
    setComputeDtype(model, 'bf16');
    const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
    t.equal(engine.stats().cacheDtype, 'bf16', `head_dim ${headDim}: the engine's cache is bf16`);
    const { samples } = await engine.generate({
      promptIds: prompt,
      params: { temperature: 0, maxNewTokens: 16, ignoreEos: true },
    });
    await engine.close();
    const s = samples[0];
    const seq = [...prompt, ...s.tokenIds];
    const full = await model.forward(packSequences([seq]), { logits: true });
    const V = model.config.vocabSize;
    let worst = 0;
    let anyDiff = false;
    for (const [k, token] of s.tokenIds.entries()) {
      const row = full.logits!.subarray((prompt.length - 1 + k) * V, (prompt.length + k) * V);
      const top = row.reduce((m, v) => Math.max(m, v), -Infinity);
      // Greedy over the cache picked a token the full forward ranks first, up to the tolerance.
      t.ok(row[token] >= top - tolerance, `head_dim ${headDim}, step ${k}: token ${token} is the argmax`);
      const want = full.logp[prompt.length - 1 + k];
      worst = Math.max(worst, Math.abs(want - s.logprobs[k]));
      anyDiff ||= want !== s.logprobs[k];
    }
    t.ok(worst < tolerance, `head_dim ${headDim}: worst log-prob |diff| ${worst.toExponential(2)} < ${tolerance}`);
    t.ok(anyDiff, `head_dim ${headDim}: the cache really rounds (log-probs are not the full forward's bits)`);
  }
});

// Samples 2..n fork the prompt's sequence and copy its shared, partly filled last block (bf16, half the
// bytes of an f32 block) before writing to it: a copy of the wrong size or place would leave a sample
// attending to garbage or to another sample's keys, far outside the tolerance.
t.test('samples that fork a bf16 cache follow the bf16 full forward within the tolerance', async (t) => {
  const model = tinyModel(2);
  setComputeDtype(model, 'bf16');
  // 19 tokens in blocks of 4: the shared last block holds 3, so a copy short of a whole block loses one.
  const promptIds = [...prompt, 5];
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  const { samples } = await engine.generate({
    promptIds,
    params: { temperature: 1, n: 3, maxNewTokens: 10, seed: 9, ignoreEos: true },
  });
  const st = engine.stats();
  await engine.close();
  t.equal(st.blockCopies, 2, 'the two other samples each copied the shared block');
  for (const [j, s] of samples.entries()) {
    const seq = [...promptIds, ...s.tokenIds];
    const { logp } = await model.forward(packSequences([seq]), { temperature: 1 });
    const want = Array.from(logp.subarray(promptIds.length - 1, seq.length - 1));
    const worst = Math.max(...want.map((w, k) => Math.abs(w - s.logprobs[k])));
    t.ok(worst < tolerance, `sample ${j}: worst log-prob |diff| ${worst.toExponential(2)} < ${tolerance}`);
  }
});
