// The generation engine on a tiny random Qwen3: cached decoding against full forwards, returned
// log-probs against Model.forward, reproducibility under batching, shared prefill, stops, streaming,
// abort, continuous batching, the memory the cache commits and the errors a caller gets.
import t from 'tap';

import { packSequences } from '../../src/engine/model.js';
import { GenerationRequestError, Qwen3GenerationEngine, requestCachedTokens } from '../../src/generate/engine.js';
import type { GenerationRequest, TokenEvent } from '../../src/generate/types.js';
import { VOCAB, greedyByFullForwards, charTokenizer, tinyModel } from './helpers.js';

const prompts = [
  [5, 9, 2, 33, 17, 8, 21],
  [1, 2, 3],
  [40, 12, 7, 7, 30, 11, 4, 19, 26, 3, 3, 45, 2, 14, 9, 16, 22, 38], // longer than one 16-token block
];

t.test('greedy decoding with the KV cache equals decoding with full forwards, token for token', async (t) => {
  const model = tinyModel(1);
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  const steps = 12;
  // All prompts in one batch: prefill of several prompts at once, then batched decode.
  const results = await Promise.all(
    prompts.map((promptIds) =>
      engine.generate({ promptIds, params: { temperature: 0, maxNewTokens: steps, ignoreEos: true } }),
    ),
  );
  await engine.close();
  for (const [i, promptIds] of prompts.entries()) {
    const seq = await greedyByFullForwards(model, promptIds, steps);
    t.same(results[i].samples[0].tokenIds, seq.slice(promptIds.length), `prompt ${i}`);
    t.equal(results[i].samples[0].finishReason, 'length');
  }
});

// Head dims 8 and 12: the cache's attention works in 8-lane vectors, 12 also takes its tail path.
for (const headDim of [8, 12])
  t.test(
    `returned log-probs equal Model.forward over the finished sequence (|diff| < 1e-4), head_dim ${headDim}`,
    async (t) => {
      const model = tinyModel(2, { headDim });
      const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
      for (const temperature of [0.7, 1.3]) {
        const { samples } = await engine.generate({
          promptIds: prompts[2],
          params: { temperature, n: 3, maxNewTokens: 10, seed: 5, topK: 20, ignoreEos: true },
        });
        for (const [j, s] of samples.entries()) {
          const seq = [...prompts[2], ...s.tokenIds];
          const { logp } = await model.forward(packSequences([seq]), { temperature });
          const want = Array.from(logp.subarray(prompts[2].length - 1, seq.length - 1));
          const worst = Math.max(...want.map((w, k) => Math.abs(w - s.logprobs[k])));
          t.ok(worst < 1e-4, `temperature ${temperature}, sample ${j}: worst |diff| ${worst.toExponential(2)}`);
        }
      }
      await engine.close();
    },
  );

t.test('the same seed gives the same tokens whatever else is in the batch', async (t) => {
  const model = tinyModel(3);
  const request: GenerationRequest = {
    promptIds: prompts[0],
    params: { temperature: 1, n: 2, maxNewTokens: 12, seed: 77, ignoreEos: true },
  };
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  const alone = await engine.generate(request);
  const crowd = [1, 2, 3].map((k) =>
    engine.generate({
      promptIds: prompts[k % 3],
      params: { temperature: 1, n: k, maxNewTokens: 8 + k, seed: k, ignoreEos: true },
    }),
  );
  const together = await engine.generate(request);
  await Promise.all(crowd);
  await engine.close();
  t.same(
    together.samples.map((s) => s.tokenIds),
    alone.samples.map((s) => s.tokenIds),
  );
  t.notSame(alone.samples[0].tokenIds, alone.samples[1].tokenIds, 'the two samples of one request differ');
});

t.test('n samples share one prefill of their prompt', async (t) => {
  const model = tinyModel(4);
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  const n = 5;
  const { samples } = await engine.generate({
    promptIds: prompts[2],
    params: { n, maxNewTokens: 6, seed: 1, ignoreEos: true },
  });
  const st = engine.stats();
  // The prompt runs through the model once; each sample then feeds its sampled tokens but the last.
  const decoded = samples.reduce((sum, s) => sum + s.tokenIds.length - 1, 0);
  t.equal(st.tokensComputed, prompts[2].length + decoded, 'tokens computed');
  t.equal(st.forks, n - 1, 'samples 2..n fork the prompt sequence');
  t.equal(st.blockCopies, n - 1, 'the shared, partly filled last block is copied once per other sample');
  t.equal(st.sequences, 0, 'every sequence was freed');
  t.equal(st.blocksFree, st.blocksTotal, 'every block is back');
  await engine.close();
});

t.test('stops: EOS, stop token ids, stop strings, max tokens, abort', async (t) => {
  const model = tinyModel(5);
  const engine = new Qwen3GenerationEngine(model, { tokenizer: charTokenizer, blockSize: 8 });
  const promptIds = charTokenizer.encode('the cat sat');
  const free = await engine.generate({ promptIds, params: { temperature: 0, maxNewTokens: 24, ignoreEos: true } });
  const ids = free.samples[0].tokenIds;
  t.equal(free.samples[0].text, charTokenizer.decode(ids, { skipSpecialTokens: true }), 'text is the decoded tokens');

  // A stop token id at the k-th greedy token ends the sample there, the id included, its text not.
  const k = 5;
  const byId = await engine.generate({
    promptIds,
    params: { temperature: 0, maxNewTokens: 24, stopTokenIds: [ids[k]] },
  });
  const firstAt = ids.indexOf(ids[k]);
  t.same(byId.samples[0].tokenIds, ids.slice(0, firstAt + 1));
  t.equal(byId.samples[0].finishReason, 'stop');
  t.equal(byId.samples[0].text, charTokenizer.decode(ids.slice(0, firstAt)));

  // Stop string: the text of the greedy continuation cut before it.
  const full = free.samples[0].text;
  const stop = full.slice(6, 8);
  const at = full.indexOf(stop);
  const events: TokenEvent[] = [];
  const byString = await engine.generate({
    promptIds,
    params: { temperature: 0, maxNewTokens: 24, stop: ['zzz-never', stop] },
    onToken: (e) => events.push(e),
  });
  t.equal(byString.samples[0].finishReason, 'stop');
  t.equal(byString.samples[0].text, full.slice(0, at), `text ends before "${stop}"`);
  t.equal(events.map((e) => e.textDelta).join(''), byString.samples[0].text, 'streamed deltas add up to the text');
  t.same(
    events.map((e) => e.tokenId),
    byString.samples[0].tokenIds,
    'one event per token, in order',
  );

  // EOS: make the model's first greedy choice the EOS id by naming it as the tokenizer's EOS.
  const eosEngine = new Qwen3GenerationEngine(model, {
    tokenizer: { ...charTokenizer, eosTokenIds: [ids[0]] },
    blockSize: 8,
  });
  const byEos = await eosEngine.generate({ promptIds, params: { temperature: 0, maxNewTokens: 24 } });
  t.same(byEos.samples[0].tokenIds, [ids[0]]);
  t.equal(byEos.samples[0].finishReason, 'stop');
  t.equal(byEos.samples[0].text, '');
  const ignoring = await eosEngine.generate({
    promptIds,
    params: { temperature: 0, maxNewTokens: 3, ignoreEos: true },
  });
  t.same(ignoring.samples[0].tokenIds, ids.slice(0, 3), 'ignoreEos decodes past it');
  t.equal(ignoring.samples[0].finishReason, 'length');
  await eosEngine.close();

  // Abort mid-decode: every sample ends with 'abort' and keeps what it had.
  const controller = new AbortController();
  let sample0Tokens = 0;
  const aborted = await engine.generate({
    promptIds,
    params: { n: 2, maxNewTokens: 200, ignoreEos: true, seed: 3 },
    signal: controller.signal,
    onToken: (e) => {
      if (e.sample === 0 && ++sample0Tokens === 3) controller.abort();
    },
  });
  t.same(
    aborted.samples.map((s) => s.finishReason),
    ['abort', 'abort'],
  );
  t.same(
    aborted.samples.map((s) => s.tokenIds.length),
    [3, 3],
    'stopped at the step boundary after the abort',
  );
  // Aborted before it starts: answered without decoding.
  const early = await engine.generate({ promptIds, params: {}, signal: AbortSignal.abort() });
  t.same(
    early.samples.map((s) => [s.finishReason, s.tokenIds.length]),
    [['abort', 0]],
  );
  t.equal(engine.stats().sequences, 0, 'aborted sequences were freed');
  await engine.close();
});

t.test('a request submitted while another decodes joins the running batch', async (t) => {
  const model = tinyModel(6);
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4 });
  let firstTokens = 0;
  let secondDoneAt = -1;
  let second: Promise<unknown> | undefined;
  const first = engine.generate({
    promptIds: prompts[0],
    params: { maxNewTokens: 30, ignoreEos: true, seed: 1 },
    onToken: () => {
      firstTokens++;
      if (firstTokens === 3)
        second = engine.generate({ promptIds: prompts[1], params: { maxNewTokens: 4, ignoreEos: true } }).then(() => {
          secondDoneAt = firstTokens;
        });
    },
  });
  await first;
  await second;
  await engine.close();
  t.ok(
    secondDoneAt > 3 && secondDoneAt < 30,
    `the second request finished while the first had ${secondDoneAt} of 30 tokens`,
  );
});

// The cache is allocated without a fill (Backend::alloc_uninit): a fill would touch every page of it, 2 GiB
// by default, each time an engine is made (once per rollout step in training). Pages are committed as
// sequences write them (2 MiB huge pages per layer's K and V buffer where the kernel gives them).
// A malloc that fills what it hands out (glibc's MALLOC_PERTURB_) commits every page itself.
const perturbed = {
  skip: process.env.MALLOC_PERTURB_ ? 'MALLOC_PERTURB_ is set: malloc itself writes every page' : false,
};
t.test('an engine commits only the KV cache memory its sequences use', perturbed, async (t) => {
  // 28 layers of 8 KV heads of 128: about 224 KiB per cached token, as a 0.6B-1.7B Qwen3.
  const model = tinyModel(1, { numLayers: 28, numKvHeads: 8, numHeads: 8, headDim: 128 });
  const before = process.memoryUsage().rss;
  const engine = new Qwen3GenerationEngine(model, { maxCachedTokens: 8192 });
  const { cacheBytes } = engine.stats();
  const r = await engine.generate({ promptIds: prompts[0], params: { temperature: 0, maxNewTokens: 4 } });
  const grown = process.memoryUsage().rss - before;
  await engine.close();
  t.equal(r.samples[0].tokenIds.length, 4);
  t.ok(cacheBytes >= 2 ** 30, `the cache is ${(cacheBytes / 2 ** 20).toFixed(0)} MiB`);
  t.ok(grown < cacheBytes / 4, `resident memory grew ${(grown / 2 ** 20).toFixed(0)} MiB`);
});

t.test('requests that cannot fit, and bad requests, are refused with a clear error', async (t) => {
  const model = tinyModel(7);
  const engine = new Qwen3GenerationEngine(model, { blockSize: 4, maxCachedTokens: 64, maxBatchSize: 4 });
  await t.rejects(engine.generate({ promptIds: new Array(60).fill(1), params: { maxNewTokens: 10 } }), {
    name: 'GenerationRequestError',
    message: /needs up to 72 cached tokens; the engine's KV cache holds 64/,
  });
  await t.rejects(engine.generate({ promptIds: [1], params: { n: 5 } }), /n must be an integer in \[1, 4\]/);
  await t.rejects(
    engine.generate({ promptIds: [1, VOCAB], params: {} }),
    /promptIds\[1\] must be an integer in \[0, 47\]/,
  );
  await t.rejects(engine.generate({ promptIds: [], params: {} }), GenerationRequestError);
  await t.rejects(engine.generate({ promptIds: [1], params: { topP: 0 } }), /topP must be a number in \(0, 1\]/);
  await t.rejects(engine.generate({ promptIds: [1], params: { stop: ['x'] } }), /stop strings need a tokenizer/);
  // Requests that fit one at a time but not together wait for cache space, then run.
  const big = { promptIds: new Array(30).fill(2), params: { maxNewTokens: 8, ignoreEos: true } };
  const both = await Promise.all([engine.generate(big), engine.generate(big)]);
  t.same(
    both.map((r) => r.samples[0].tokenIds.length),
    [8, 8],
  );
  await engine.close();
  await t.rejects(engine.generate({ promptIds: [1], params: {} }), /closed/);
  // A cache sized by requestCachedTokens (as medix generate sizes its one request's) holds that request, not one more block.
  const maxCachedTokens = requestCachedTokens(30, 2, 9, 4);
  t.equal(maxCachedTokens, 4 * (7 + 2 * (10 - 7)), 'the shared prompt blocks once, then each sample its own');
  const sized = new Qwen3GenerationEngine(model, { blockSize: 4, maxCachedTokens, maxBatchSize: 2 });
  const params = { n: 2, maxNewTokens: 9, ignoreEos: true };
  t.equal((await sized.generate({ ...big, params })).samples[1].tokenIds.length, 9);
  await t.rejects(sized.generate({ ...big, params: { ...params, maxNewTokens: 11 } }), GenerationRequestError);
  await sized.close();
});
