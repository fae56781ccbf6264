// The shared OpenAI-compatible chat client against a scripted local server: what it sends, retries
// on 5xx/429/timeouts with a bounded number of attempts, no retry on other 4xx, Retry-After, the
// concurrency bound, and availability tracking (failing since when, recovered by one answer).
import t from 'tap';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ChatClient, ChatEndpointError } from '../../src/judge/chat-client.js';

type Reply = { status: number; body?: string; headers?: Record<string, string>; delayMs?: number };

interface Scripted {
  url: string;
  bodies: Record<string, unknown>[];
  headers: http.IncomingHttpHeaders[];
  arrivals: number[];
  peak: number;
  close: () => Promise<void>;
}

const ok = (content: string): Reply => ({
  status: 200,
  body: JSON.stringify({ choices: [{ message: { content }, finish_reason: 'stop' }] }),
});

/** Answers request i with script(i). */
async function scripted(script: (i: number) => Reply): Promise<Scripted> {
  let inFlight = 0;
  const s = { bodies: [], headers: [], arrivals: [], peak: 0 } as unknown as Scripted;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const i = s.bodies.length;
      s.bodies.push(JSON.parse(body));
      s.headers.push(req.headers);
      s.arrivals.push(Date.now());
      s.peak = Math.max(s.peak, ++inFlight);
      const r = script(i);
      setTimeout(() => {
        inFlight--;
        if (!res.destroyed)
          res.writeHead(r.status, { 'content-type': 'application/json', ...r.headers }).end(r.body ?? '');
      }, r.delayMs ?? 0);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  s.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/`;
  s.close = () =>
    new Promise((r) => {
      server.closeAllConnections();
      server.close(() => r());
    });
  return s;
}

const call = {
  messages: [{ role: 'user' as const, content: 'hi' }],
  temperature: 0,
  maxTokens: 4,
  extra: { chat_template_kwargs: { enable_thinking: false } },
};

t.test('sends an OpenAI chat request and reads the answer', async (t) => {
  const s = await scripted(() => ok('YES'));
  t.teardown(s.close);
  const c = new ChatClient({ baseUrl: s.url, model: 'judge-m', apiKey: 'sk-test' });
  const a = await c.chat(call);
  t.same(a, { text: 'YES', finishReason: 'stop', attempts: 1 });
  t.same(s.bodies[0], {
    model: 'judge-m',
    messages: call.messages,
    temperature: 0,
    max_tokens: 4,
    chat_template_kwargs: { enable_thinking: false },
  });
  t.equal(s.headers[0].authorization, 'Bearer sk-test');
  t.equal(c.availability().failingSince, null);
  t.ok(c.availability().lastSuccessAt !== null);
  t.throws(() => new ChatClient({ baseUrl: 'localhost:8000', model: 'm' }), /baseUrl must start with http/);
});

t.test('retries 5xx and 429 with backoff, then succeeds', async (t) => {
  const s = await scripted((i) =>
    i === 0 ? { status: 503, body: 'busy' } : i === 1 ? { status: 429, body: 'slow down' } : ok('NO'),
  );
  t.teardown(s.close);
  const c = new ChatClient({ baseUrl: s.url, model: 'm', backoffMs: 1 });
  const a = await c.chat(call);
  t.equal(a.attempts, 3);
  t.equal(a.text, 'NO');
  t.equal(c.attempts, 3);
});

t.test('gives up after maxAttempts with the last error, and tracks the outage', async (t) => {
  const s = await scripted(() => ({ status: 502, body: 'bad gateway' }));
  t.teardown(s.close);
  const c = new ChatClient({ baseUrl: s.url, model: 'm', maxAttempts: 3, backoffMs: 1 });
  const before = Date.now();
  await t.rejects(c.chat(call), { name: 'ChatEndpointError', message: /chat\/completions: HTTP 502: bad gateway/ });
  t.equal(s.bodies.length, 3);
  const a = c.availability();
  t.equal(a.consecutiveFailures, 1);
  t.ok(a.failingSince !== null && a.failingSince >= before, 'failing since the failed request began');
  t.match(a.lastError, /HTTP 502/);
  await t.rejects(c.chat(call));
  t.equal(c.availability().failingSince, a.failingSince, 'the outage start stays put while failures continue');
  t.equal(c.availability().consecutiveFailures, 2);
});

t.test(
  'does not retry a request the server rejects (4xx but 429), nor a reply that is not a chat answer forever',
  async (t) => {
    const s = await scripted((i) =>
      i === 0 ? { status: 400, body: 'unknown model' } : { status: 200, body: '{"choices": []}' },
    );
    t.teardown(s.close);
    const c = new ChatClient({ baseUrl: s.url, model: 'm', maxAttempts: 4, backoffMs: 1 });
    const e = await c.chat(call).catch((x: unknown) => x);
    t.ok(e instanceof ChatEndpointError && !e.retryable, 'not retryable');
    t.equal(s.bodies.length, 1, 'one attempt');
    await t.rejects(c.chat(call), /no choices\[0\]\.message\.content/);
    t.equal(s.bodies.length, 5, 'a malformed reply is retried up to maxAttempts');
  },
);

t.test('a per-request timeout aborts a silent server and says so', async (t) => {
  const s = await scripted(() => ({ ...ok('late'), delayMs: 2000 }));
  t.teardown(s.close);
  const c = new ChatClient({ baseUrl: s.url, model: 'm', timeoutMs: 50, maxAttempts: 2, backoffMs: 1 });
  await t.rejects(c.chat(call), /no answer within the per-request timeout of 50 ms/);
  t.equal(s.bodies.length, 2);
});

t.test('an unreachable server is a clear error', async (t) => {
  const s = await scripted(() => ok('never'));
  await s.close(); // the port is now closed
  const c = new ChatClient({ baseUrl: s.url, model: 'm', maxAttempts: 1 });
  await t.rejects(c.chat(call), /127\.0\.0\.1:\d+\/v1\/chat\/completions: fetch failed \(ECONNREFUSED\)/);
});

t.test('Retry-After is honoured before the next attempt', async (t) => {
  const s = await scripted((i) => (i === 0 ? { status: 429, headers: { 'retry-after': '0.3' } } : ok('YES')));
  t.teardown(s.close);
  const c = new ChatClient({ baseUrl: s.url, model: 'm', backoffMs: 1 });
  await c.chat(call);
  t.ok(s.arrivals[1] - s.arrivals[0] >= 290, `waited ${s.arrivals[1] - s.arrivals[0]} ms for a 300 ms Retry-After`);
});

t.test('never more requests in flight than the concurrency bound, and they do overlap', async (t) => {
  const s = await scripted(() => ({ ...ok('YES'), delayMs: 20 }));
  t.teardown(s.close);
  const c = new ChatClient({ baseUrl: s.url, model: 'm', concurrency: 4 });
  const all = Array.from({ length: 24 }, () => c.chat(call));
  t.ok(c.pending > 4, 'requests beyond the bound wait their turn');
  await Promise.all(all);
  t.equal(s.peak, 4, 'server saw exactly the bound in flight');
  t.equal(c.peakInFlight, 4);
  t.equal(c.pending, 0);
});
