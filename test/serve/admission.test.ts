// `medix serve`'s admission checks: the queued sample-token budget (429 with Retry-After, released
// when requests finish), the API key compared in constant time, the warning for an exposed server
// without a key, and the Host header against DNS rebinding.
import t from 'tap';
import http from 'node:http';
import { Model } from '../../src/engine/model.js';
import { createGenerationEngine } from '../../src/generate/engine.js';
import { startServer } from '../../src/serve/server.js';
import { apiKeyMatches, exposureWarning, hostAllowed } from '../../src/serve/guards.js';
import { loadTokenizer } from '../../src/tokenizer/index.js';
import type { GenerationEngine, GenerationResult } from '../../src/generate/types.js';
import { tinyQwen3Config } from '../helpers/tiny-config.js';

const tokenizer = await loadTokenizer();
const model = Model.create({ ...tinyQwen3Config, vocabSize: tokenizer.vocabSize }, { seed: 5 });

/** An engine whose generations wait until `release()` (then no longer), so requests stay queued while the test looks. */
function heldEngine() {
  const inner = createGenerationEngine(model, { tokenizer });
  let open: () => void = () => {};
  const gate = new Promise<void>((r) => (open = r));
  let started = 0;
  const engine: GenerationEngine = {
    generate: async (request): Promise<GenerationResult> => {
      started++;
      await gate;
      return inner.generate(request);
    },
    close: () => inner.close(),
  };
  return { engine, started: () => started, release: () => open() };
}

const chatBody = (max_tokens: number, n = 1) =>
  JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'Hi' }], max_tokens, n, temperature: 0 });

t.test('queued sample-tokens are bounded: past the budget a request gets 429 with Retry-After', async (t) => {
  const held = heldEngine();
  const server = await startServer({
    engine: held.engine,
    tokenizer,
    modelName: 'tiny',
    port: 0,
    maxQueuedTokens: 100,
  });
  t.teardown(() => server.close());
  const post = (body: string, path = '/v1/chat/completions') => fetch(`${server.url}${path}`, { method: 'POST', body });
  const first = post(chatBody(30, 2)); // 60 of 100
  while (held.started() < 1) await new Promise((r) => setTimeout(r, 5));
  const over = await post(chatBody(41)); // 60 + 41 > 100
  t.equal(over.status, 429);
  t.equal(over.headers.get('retry-after'), '1');
  t.match((await over.json()).error.message, /60 of 100 sample-tokens queued/);
  const prompts = await post(
    JSON.stringify({ model: 'tiny', prompt: ['a', 'b', 'c'], max_tokens: 14 }),
    '/v1/completions',
  );
  t.equal(prompts.status, 429, 'completions count prompts x n x max_tokens (3 x 14 = 42)');
  const fits = post(chatBody(40)); // 60 + 40 = 100
  while (held.started() < 2) await new Promise((r) => setTimeout(r, 5));
  t.equal((await post(chatBody(1))).status, 429, 'the budget is full');
  const never = await post(chatBody(50, 3));
  t.equal(never.status, 400, 'a request larger than the whole budget can never be queued: 400, not 429');
  held.release();
  t.equal((await first).status, 200);
  t.equal((await fits).status, 200);
  t.equal((await post(chatBody(100))).status, 200, 'finished requests gave their tokens back');
});

t.test('the API key: constant-time comparison of the whole header', async (t) => {
  t.ok(apiKeyMatches('Bearer sekret', 'sekret'));
  for (const wrong of [undefined, '', 'Bearer sekre', 'Bearer sekret2', 'bearer sekret', 'sekret', 'Bearer sekreT'])
    t.notOk(apiKeyMatches(wrong, 'sekret'), JSON.stringify(wrong));
  const server = await startServer({
    engine: createGenerationEngine(model, { tokenizer }),
    tokenizer,
    modelName: 'tiny',
    port: 0,
    apiKey: 'sekret',
  });
  t.teardown(() => server.close());
  t.equal((await fetch(`${server.url}/v1/models`, { headers: { authorization: 'Bearer sekrex' } })).status, 401);
  t.equal((await fetch(`${server.url}/v1/models`, { headers: { authorization: 'Bearer sekret' } })).status, 200);
});

t.test('binding a non-loopback address without a key warns', async (t) => {
  t.equal(exposureWarning('127.0.0.1', undefined), null);
  t.equal(exposureWarning('::1', undefined), null);
  t.equal(exposureWarning('0.0.0.0', 'key'), null, 'a key is set');
  t.match(exposureWarning('0.0.0.0', undefined)!, /listening on 0\.0\.0\.0 .*without an API key/);
  const lines: string[] = [];
  const server = await startServer({
    engine: createGenerationEngine(model, { tokenizer }),
    tokenizer,
    modelName: 'tiny',
    host: '0.0.0.0',
    port: 0,
    warn: (l) => lines.push(l),
  });
  await server.close();
  t.equal(lines.length, 1, 'startServer warns once');
  const quiet: string[] = [];
  const local = await startServer({
    engine: createGenerationEngine(model, { tokenizer }),
    tokenizer,
    modelName: 'tiny',
    port: 0,
    warn: (l) => quiet.push(l),
  });
  await local.close();
  t.same(quiet, [], 'no warning on loopback');
});

/** A GET with a chosen Host header (fetch does not let one set it). */
function getWithHost(url: string, host: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}/v1/models`, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}

t.test('the Host header must name the bound address unless --allow-host names others', async (t) => {
  t.ok(hostAllowed('127.0.0.1:8000', '127.0.0.1', []));
  t.ok(hostAllowed('localhost:8000', '127.0.0.1', []), 'localhost on a loopback bind');
  t.ok(hostAllowed('[::1]:8000', '::1', []));
  t.notOk(hostAllowed('evil.example:8000', '127.0.0.1', []), 'a rebound domain');
  t.notOk(hostAllowed(undefined, '127.0.0.1', []));
  t.ok(hostAllowed('10.1.2.3:8000', '0.0.0.0', []), 'any IP literal on a wildcard bind');
  t.notOk(hostAllowed('evil.example', '0.0.0.0', []), 'but not a domain');
  t.ok(hostAllowed('Models.Example.org:443', '0.0.0.0', ['models.example.org']), 'an allowed name, any case');
  t.notOk(hostAllowed('10.1.2.3', '10.1.2.4', []), 'another address');
  const server = await startServer({
    engine: createGenerationEngine(model, { tokenizer }),
    tokenizer,
    modelName: 'tiny',
    port: 0,
    allowHosts: ['medix.internal'],
  });
  t.teardown(() => server.close());
  const port = new URL(server.url).port;
  t.equal(await getWithHost(server.url, `127.0.0.1:${port}`), 200);
  t.equal(await getWithHost(server.url, `evil.example:${port}`), 403, 'DNS rebinding refused');
  t.equal(await getWithHost(server.url, `medix.internal:${port}`), 200, '--allow-host');
});
