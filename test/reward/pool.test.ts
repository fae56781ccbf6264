// The reward through its Piscina worker pool, with a real ONNX embedding model and a local judge
// that answers after 50 ms: 1,024 responses submitted one by one overlap at the judge, the calling
// thread's event loop keeps turning, each worker loads its scorer once, results equal scoring on
// the calling thread, and the cache makes a repeat free, also in a new process.
import t from 'tap';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompositeReward } from '../../src/reward/composite.js';
import { parseRewardConfig } from '../../src/reward/config.js';
import { judgeServer } from '../helpers/judge-server.js';
import { writeTinyEncoder } from '../helpers/tiny-encoder.js';

const dir = mkdtempSync(join(tmpdir(), 'medix-pool-'));
const enc = writeTinyEncoder(dir);
// Module evaluation leaves one line per worker that loaded it: the scorer is built once per worker.
writeFileSync(
  join(dir, 'count.mjs'),
  `import { appendFileSync } from 'node:fs';\nimport { threadId } from 'node:worker_threads';\nappendFileSync(${JSON.stringify(join(dir, 'loads.txt'))}, threadId + '\\n');\nexport function brevity(response) { return response.length < 120 ? 1 : 0; }\n`,
);

const resp = (answer: string) => `<X_RAY><thinking>findings reviewed</thinking><answer>${answer}</answer>`;
const answers = ['lobar pneumonia', 'right lower lobe pneumonia', 'pleural effusion', 'no fracture', 'glioma'];
const gts = ['<X_RAY> lobar pneumonia', '<CT_SCAN> pleural effusion', '<MRI_SCAN> glioma'];

t.test('1,024 responses through the pool overlap at a 50 ms judge; the cache makes a repeat free', async (t) => {
  const judge = await judgeServer(50);
  t.teardown(judge.close);
  const raw = {
    workers: 2,
    judge: { base_url: judge.url, model: 'j', concurrency: 128, cache_file: join(dir, 'cache.jsonl') },
    embedding: { model: enc.modelFile, tokenizer: enc.tokenizerFile, pooling: 'mean', batch_size: 16 },
    custom: [{ function: 'count.mjs:brevity', weight: 0.5 }],
  };
  const reward = await CompositeReward.create(parseRewardConfig(raw), { baseDir: dir, warn: () => {} });
  const n = 1024;
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 5);
  const t0 = Date.now();
  const pending = [];
  for (let i = 0; i < n; i++) {
    // submitted one at a time, as generation would finish them
    pending.push(reward.score(resp(`${answers[i % answers.length]} case ${i}`), gts[i % gts.length]));
    if (i % 64 === 63) await new Promise((r) => setImmediate(r));
  }
  const results = await Promise.all(pending);
  const wall = Date.now() - t0;
  clearInterval(ticker);
  t.equal(results.length, n);
  t.equal(judge.requests, n, 'every distinct answer judged once');
  t.ok(judge.peak >= 32, `judge calls overlapped: ${judge.peak} in flight at once (bound 128)`);
  t.ok(ticks > 0, `the calling thread's event loop kept turning (${ticks} timer ticks during scoring)`);
  t.ok(results.every((r) => r.overall !== null && r.unavailable.length === 0 && r.custom.brevity === 1));
  t.ok(
    results.every((r) => !r.reasons.accuracy_embed),
    'the ONNX model, not a fallback, scored accuracy_embed',
  );

  // The serial figure is measured too (on fewer responses, new answers so the cache cannot help):
  // each one awaited before the next is submitted, as a loop without the pool's overlap would.
  const serial = 64;
  const s0 = Date.now();
  for (let i = 0; i < serial; i++) await reward.score(resp(`one at a time ${i}`), gts[i % gts.length]);
  const serialWall = Date.now() - s0;
  t.equal(judge.requests, n + serial, 'each serial answer judged once');
  const rate = (count: number, ms: number) => ((count * 1000) / ms).toFixed(0);
  t.comment(
    `50 ms judge: ${n} overlapped responses in ${wall} ms (${rate(n, wall)}/s); ` +
      `${serial} one at a time in ${serialWall} ms (${rate(serial, serialWall)}/s)`,
  );

  // The same answers again: all from the cache, in this process and in a new one reading the file.
  await Promise.all(
    Array.from({ length: 64 }, (_, i) =>
      reward.score(resp(`${answers[i % answers.length]} case ${i}`), gts[i % gts.length]),
    ),
  );
  t.equal(judge.requests, n + serial, 'repeats cost no judge call');
  await reward.close();
  const loads = readFileSync(join(dir, 'loads.txt'), 'utf8').trim().split('\n');
  t.ok(
    loads.length <= 2 && new Set(loads).size === loads.length,
    `scorer (ONNX session, tokenizer, custom modules) loaded once per worker: ${loads.length} loads`,
  );
  const again = await CompositeReward.create(parseRewardConfig({ ...raw, workers: 1 }), {
    baseDir: dir,
    warn: () => {},
  });
  t.teardown(() => again.close());
  const r = await again.score(resp(`${answers[7 % answers.length]} case 7`), gts[7 % gts.length]);
  t.same(r, results[7], 'same result from the cache file');
  t.equal(judge.requests, n + serial, 'no judge call in the new instance');
});

t.test('the pool gives the same results as scoring on the calling thread', async (t) => {
  const raw = {
    embedding: { model: enc.modelFile, tokenizer: enc.tokenizerFile, pooling: 'mean', threads: 1 },
    embed_threshold: 0.99,
  };
  const pooled = await CompositeReward.create(parseRewardConfig({ ...raw, workers: 1 }), {
    baseDir: dir,
    warn: () => {},
  });
  const inline = await CompositeReward.create(parseRewardConfig({ ...raw, workers: 0 }), {
    baseDir: dir,
    warn: () => {},
  });
  t.teardown(async () => {
    await pooled.close();
    await inline.close();
  });
  const cases = answers.flatMap((a) => gts.map((g) => [resp(a), g] as const));
  const [p, q] = await Promise.all([
    Promise.all(cases.map(([r, g]) => pooled.score(r, g))),
    Promise.all(cases.map(([r, g]) => inline.score(r, g))),
  ]);
  t.same(p, q);
  t.ok(
    p.some((r) => r.accuracy_embed === 1) && p.some((r) => r.accuracy_embed === 0),
    'the threshold separates some pairs',
  );
});

t.test('a bad embedding path or custom module fails at start-up with the file named', async (t) => {
  await t.rejects(
    CompositeReward.create(
      parseRewardConfig({ workers: 1, embedding: { model: 'absent.onnx', tokenizer: enc.tokenizerFile } }),
      { baseDir: dir },
    ),
    /embedding model .*absent\.onnx/,
  );
  await t.rejects(
    CompositeReward.create(parseRewardConfig({ workers: 1, custom: [{ function: 'count.mjs:nothing', weight: 1 }] }), {
      baseDir: dir,
    }),
    /count\.mjs exports no function 'nothing'/,
  );
});
