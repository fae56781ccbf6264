// `medix serve` through the official openai client: chat and completions, streaming that adds up to
// the non-streamed text, n > 1, seeds, 64 concurrent requests, validation and limits answered with
// the right status while other requests are unharmed, auth, unknown models, graceful shutdown.
import t from 'tap';
import http from 'node:http';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { Model } from '../../src/engine/model.js';
import { createGenerationEngine } from '../../src/generate/engine.js';
import { startServer, type RunningServer } from '../../src/serve/server.js';
import { defaultTokenizerDir, loadTokenizer } from '../../src/tokenizer/index.js';
import type { TextTokenizer } from '../../src/tokenizer/types.js';
import type { GenerationEngine, GenerationResult } from '../../src/generate/types.js';
import { tinyQwen3Config } from '../helpers/tiny-config.js';

const tokenizer = await loadTokenizer();
const model = Model.create({ ...tinyQwen3Config, vocabSize: tokenizer.vocabSize }, { seed: 5 });

type Extra = {
  apiKey?: string;
  maxBodyBytes?: number;
  maxTokensCap?: number;
  engine?: GenerationEngine;
  tokenizer?: TextTokenizer;
};

async function serve(extra: Extra = {}): Promise<{ server: RunningServer; client: OpenAI }> {
  const server = await startServer({
    tokenizer: extra.tokenizer ?? tokenizer,
    modelName: 'tiny',
    port: 0,
    ...extra,
    engine: extra.engine ?? createGenerationEngine(model, { tokenizer }),
  });
  return {
    server,
    client: new OpenAI({ baseURL: `${server.url}/v1`, apiKey: extra.apiKey ?? 'unused', maxRetries: 0 }),
  };
}

const messages = [{ role: 'user' as const, content: 'Which modality shows a pneumothorax best?' }];

t.test('chat, completions, streaming, n, seeds, usage', async (t) => {
  const { server, client } = await serve();
  t.teardown(() => server.close());
  t.same(
    (await client.models.list()).data.map((m) => m.id),
    ['tiny'],
  );
  const a = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 12, temperature: 0 });
  t.equal(a.choices.length, 1);
  t.equal(a.usage!.completion_tokens, 12, 'a random tiny model rarely stops: max_tokens respected');
  t.equal(a.choices[0].finish_reason, 'length');
  t.ok(a.usage!.prompt_tokens > 5 && a.usage!.total_tokens === a.usage!.prompt_tokens + 12, 'usage adds up');
  const stream = await client.chat.completions.create({
    model: 'tiny',
    messages,
    max_tokens: 12,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      text += c.delta.content ?? '';
      finish = c.finish_reason ?? finish;
    }
    usage = chunk.usage ?? usage;
  }
  t.equal(text, a.choices[0].message.content, 'stream chunks add up to the non-streamed text at temperature 0');
  t.equal(finish, 'length');
  t.equal(usage?.completion_tokens, 12);
  const n = await client.chat.completions.create({
    model: 'tiny',
    messages,
    max_tokens: 8,
    temperature: 1,
    n: 3,
    seed: 7,
    logprobs: true,
  });
  t.equal(n.choices.length, 3);
  t.ok(
    n.choices.every((c) => c.logprobs!.content!.length === 8 && c.logprobs!.content!.every((x) => x.logprob <= 0)),
    'one log-prob per token',
  );
  const again = await client.chat.completions.create({
    model: 'tiny',
    messages,
    max_tokens: 8,
    temperature: 1,
    n: 3,
    seed: 7,
  });
  t.same(
    again.choices.map((c) => c.message.content),
    n.choices.map((c) => c.message.content),
    'same seed, same samples',
  );
  const top = await client.chat.completions.create({
    model: 'tiny',
    messages,
    max_tokens: 4,
    temperature: 0,
    logprobs: true,
    top_logprobs: 1,
  });
  t.ok(
    top.choices[0].logprobs!.content!.every(
      (x) =>
        x.top_logprobs.length === 1 && x.top_logprobs[0].token === x.token && x.top_logprobs[0].logprob === x.logprob,
    ),
    'top_logprobs holds the chosen token',
  );
  const cmpl = await client.completions.create({
    model: 'tiny',
    prompt: ['Chest X-ray:', 'MRI:'],
    max_tokens: 5,
    temperature: 0,
    logprobs: 1,
  });
  t.equal(cmpl.choices.length, 2);
  t.equal(cmpl.usage!.completion_tokens, 10);
  t.ok(
    cmpl.choices.every(
      (c) =>
        c.logprobs!.tokens!.length === 5 &&
        c.logprobs!.token_logprobs!.length === 5 &&
        c.logprobs!.top_logprobs!.length === 5,
    ),
    'completions logprobs per token',
  );
  const one = await client.completions.create({ model: 'tiny', prompt: 'Chest X-ray:', max_tokens: 9, temperature: 0 });
  let streamed = '';
  let streamedUsage: OpenAI.CompletionUsage | undefined;
  for await (const chunk of await client.completions.create({
    model: 'tiny',
    prompt: 'Chest X-ray:',
    max_tokens: 9,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  })) {
    streamed += chunk.choices.map((c) => c.text).join('');
    streamedUsage = chunk.usage ?? streamedUsage;
  }
  t.equal(streamed, one.choices[0].text, 'completion stream adds up to the non-streamed text');
  t.same(streamedUsage, one.usage, 'streamed usage matches');
  const prompts = ['Chest X-ray:', 'MRI:'];
  const apart = await client.completions.create({
    model: 'tiny',
    prompt: prompts,
    max_tokens: 6,
    temperature: 0,
    n: 2,
  });
  const byChoice = ['', '', '', ''];
  const finishes: (string | null)[] = [];
  for await (const chunk of await client.completions.create({
    model: 'tiny',
    prompt: prompts,
    max_tokens: 6,
    temperature: 0,
    n: 2,
    stream: true,
  })) {
    for (const c of chunk.choices) {
      byChoice[c.index] += c.text;
      if (c.finish_reason) finishes[c.index] = c.finish_reason;
    }
  }
  t.same(
    byChoice,
    apart.choices.map((c) => c.text),
    'two prompts with n = 2 stream as choices 0-3, each adding up to its non-streamed text',
  );
  t.same(finishes, ['length', 'length', 'length', 'length']);
});

t.test('stop strings and the thinking switch reach the model', async (t) => {
  const { server, client } = await serve();
  t.teardown(() => server.close());
  const full = (
    await client.completions.create({ model: 'tiny', prompt: 'CT:', max_tokens: 16, temperature: 1, seed: 3 })
  ).choices[0].text;
  const stop = full.slice(Math.floor(full.length / 2), Math.floor(full.length / 2) + 2);
  t.ok(stop.length === 2, `a stop string taken from the seeded sample ${JSON.stringify(full)}`);
  const stopped = (
    await client.completions.create({
      model: 'tiny',
      prompt: 'CT:',
      max_tokens: 16,
      temperature: 1,
      seed: 3,
      stop: [stop],
    })
  ).choices[0];
  t.equal(stopped.text, full.slice(0, full.indexOf(stop)), 'text ends before the first stop string');
  t.equal(stopped.finish_reason, 'stop');
  const promptTokens = async (enable_thinking?: boolean) => {
    const body = {
      model: 'tiny',
      messages,
      max_tokens: 1,
      ...(enable_thinking === undefined ? {} : { chat_template_kwargs: { enable_thinking } }),
    };
    return (await client.chat.completions.create(body as OpenAI.ChatCompletionCreateParamsNonStreaming)).usage!
      .prompt_tokens;
  };
  const [byDefault, on, off] = [await promptTokens(), await promptTokens(true), await promptTokens(false)];
  t.equal(byDefault, on, 'thinking on by default');
  t.ok(off > on, 'enable_thinking false renders the empty think block into the prompt');
});

t.test('prompt forms and message roles as OpenAI clients send them', async (t) => {
  const { server, client } = await serve();
  t.teardown(() => server.close());
  const text = (
    await client.completions.create({ model: 'tiny', prompt: 'Chest X-ray:', max_tokens: 6, temperature: 0 })
  ).choices[0].text;
  const ids = tokenizer.encode('Chest X-ray:', { addSpecialTokens: false });
  t.equal(
    (await client.completions.create({ model: 'tiny', prompt: ids, max_tokens: 6, temperature: 0 })).choices[0].text,
    text,
    'token ids answer as their text',
  );
  const lists = await client.completions.create({ model: 'tiny', prompt: [ids, ids], max_tokens: 6, temperature: 0 });
  t.same(
    lists.choices.map((c) => c.text),
    [text, text],
    'lists of token ids, one choice each',
  );
  const outOfVocab = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ model: 'tiny', prompt: [tokenizer.vocabSize], max_tokens: 2 }),
  });
  t.equal(outOfVocab.status, 400);
  t.match((await outOfVocab.json()).error.message, /promptIds\[0\]/, 'the bad id is named');

  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  const many = await client.completions.create({
    model: 'tiny',
    prompt: Array.from({ length: 20 }, (_, i) => `finding ${i}:`),
    max_tokens: 2,
    temperature: 0,
  });
  process.off('warning', onWarning);
  t.equal(many.choices.length, 20);
  t.same(
    warnings.map((w) => w.name),
    [],
    'twenty prompts in one request raise no listener-leak warning',
  );

  const reply = async (role: 'system' | 'developer') =>
    (
      await client.chat.completions.create({
        model: 'tiny',
        messages: [{ role, content: 'Answer briefly.' }, ...messages],
        max_tokens: 5,
        temperature: 0,
      })
    ).choices[0].message.content;
  t.equal(await reply('developer'), await reply('system'), "a 'developer' message is the template's system message");
  const image = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({
      model: 'tiny',
      messages: [
        {
          role: 'user',
          content: [
            { type: 'image_url', image_url: { url: 'data:image/png;base64,AAAA' } },
            { type: 'text', text: 'What is shown?' },
          ],
        },
      ],
    }),
  });
  t.equal(image.status, 400, 'an image is refused by a text-only model, not a 500');
  const { error } = await image.json();
  t.equal(error.param, 'messages.0.content.0');
  t.match(error.message, /text-only model; it cannot take images/);
});

t.test("a chat the model's template refuses is the client's error (400), not the server's", async (t) => {
  // The model's own template, here one that takes only chats opened by the user, as some do.
  const dir = mkdtempSync(join(tmpdir(), 'medix-serve-template-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of ['tokenizer.json', 'tokenizer_config.json'])
    copyFileSync(join(defaultTokenizerDir(), name), join(dir, name));
  writeFileSync(
    join(dir, 'chat_template.jinja'),
    "{% if messages[0].role != 'user' %}{{ raise_exception('conversations must start with the user') }}{% endif %}" +
      '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n',
  );
  const strict = await loadTokenizer(dir);
  const { server, client } = await serve({
    tokenizer: strict,
    engine: createGenerationEngine(model, { tokenizer: strict }),
  });
  t.teardown(() => server.close());
  const ok = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 2 });
  t.equal(ok.usage!.completion_tokens, 2, 'a chat the template takes is answered');
  const refused = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    body: JSON.stringify({ model: 'tiny', messages: [{ role: 'assistant', content: 'Hello.' }], max_tokens: 2 }),
  });
  t.equal(refused.status, 400);
  const { error } = await refused.json();
  t.equal(error.param, 'messages');
  t.match(error.message, /conversations must start with the user/, "the template's own reason");
});

t.test('64 concurrent requests are all answered', async (t) => {
  const { server, client } = await serve();
  t.teardown(() => server.close());
  const replies = await Promise.all(
    Array.from({ length: 64 }, (_, i) =>
      client.chat.completions.create({
        model: 'tiny',
        messages: [{ role: 'user', content: `question ${i}` }],
        max_tokens: 6,
        temperature: 0.8,
        seed: i,
      }),
    ),
  );
  t.equal(
    replies.filter((r) => r.choices[0].message.content !== undefined && r.usage!.completion_tokens === 6).length,
    64,
  );
});

t.test('bad requests get the right status and do not harm others', async (t) => {
  const engine = createGenerationEngine(model, { tokenizer, maxBatchSize: 2 });
  const { server, client } = await serve({ apiKey: 'sekret', maxBodyBytes: 4096, maxTokensCap: 8, engine });
  t.teardown(() => server.close());
  const post = (body: string, auth = 'Bearer sekret', path = '/v1/chat/completions') =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: auth },
      body,
    });
  const running = client.chat.completions.create({ model: 'tiny', messages, max_tokens: 50, temperature: 0 });
  const bad = await post('{"model": "tiny", "messages": [');
  t.equal(bad.status, 400);
  t.match((await bad.json()).error.message, /not valid JSON/);
  const field = await post(JSON.stringify({ model: 'tiny', messages, temperature: 9 }));
  t.equal(field.status, 400);
  t.equal((await field.json()).error.param, 'temperature', 'the bad field is named');
  const big = await post(JSON.stringify({ model: 'tiny', messages: [{ role: 'user', content: 'x'.repeat(10000) }] }));
  t.equal(big.status, 413);
  const chunked = await new Promise<number | undefined>((resolve, reject) => {
    const req = http.request(
      `${server.url}/v1/chat/completions`,
      { method: 'POST', headers: { authorization: 'Bearer sekret' } },
      (res) => resolve(res.statusCode),
    );
    req.on('error', reject);
    for (let i = 0; i < 10; i++) req.write('x'.repeat(1000));
    req.end();
  });
  t.equal(chunked, 413, 'a chunked body (no content-length) past the limit');
  t.equal((await post(JSON.stringify({ model: 'tiny', messages }), 'Bearer wrong')).status, 401);
  const unknown = await post(JSON.stringify({ model: 'gpt-9', messages }));
  t.equal(unknown.status, 404);
  t.equal((await unknown.json()).error.code, 'model_not_found');
  t.equal((await fetch(`${server.url}/v1/nope`, { headers: { authorization: 'Bearer sekret' } })).status, 404);
  t.equal(
    (await fetch(`${server.url}/v1/chat/completions`, { headers: { authorization: 'Bearer sekret' } })).status,
    405,
  );
  const overBatch = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: 'Bearer sekret' },
    body: JSON.stringify({ model: 'tiny', messages, n: 3, stream: true }),
  });
  t.equal(overBatch.status, 400, 'a stream the engine refuses (n above its batch) is a 400, not a broken 200 stream');
  t.match((await overBatch.json()).error.message, /\bn\b/);
  const ok = await running;
  t.equal(ok.usage!.completion_tokens, 8, 'the request in flight finished, capped at max_tokens_cap');
});

t.test('a client that disconnects mid-stream aborts its generation', async (t) => {
  const inner = createGenerationEngine(model, { tokenizer });
  const finished: GenerationResult[] = [];
  const engine: GenerationEngine = {
    generate: async (request) => {
      const result = await inner.generate(request);
      finished.push(result);
      return result;
    },
    close: () => inner.close(),
  };
  const { server, client } = await serve({ engine });
  t.teardown(() => server.close());
  let chunks = 0;
  for await (const _ of await client.chat.completions.create({
    model: 'tiny',
    messages,
    max_tokens: 3000,
    temperature: 0,
    stream: true,
  }))
    if (++chunks === 3) break;
  while (finished.length === 0) await new Promise((r) => setTimeout(r, 10));
  t.equal(finished[0].samples[0].finishReason, 'abort');
  t.ok(finished[0].samples[0].tokenIds.length < 3000, `stopped after ${finished[0].samples[0].tokenIds.length} tokens`);
  const after = await client.chat.completions.create({ model: 'tiny', messages, max_tokens: 3, temperature: 0 });
  t.equal(after.usage!.completion_tokens, 3, 'the server goes on answering');

  // Without streaming the client waits for one JSON answer; closing the socket meanwhile aborts too.
  finished.length = 0;
  const req = http.request(`${server.url}/v1/chat/completions`, { method: 'POST' });
  req.on('error', () => {});
  req.end(JSON.stringify({ model: 'tiny', messages, max_tokens: 3000, temperature: 0 }));
  await new Promise((r) => setTimeout(r, 100));
  req.destroy();
  while (finished.length === 0) await new Promise((r) => setTimeout(r, 10));
  t.equal(finished[0].samples[0].finishReason, 'abort', 'a non-streaming request is aborted when its client leaves');

  finished.length = 0;
  const mixed = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({
      model: 'tiny',
      prompt: [[1, 2, 3], [tokenizer.vocabSize]],
      max_tokens: 3000,
      temperature: 0,
    }),
  });
  t.equal(mixed.status, 400, 'one refused prompt fails the request');
  while (finished.length === 0) await new Promise((r) => setTimeout(r, 10));
  t.equal(finished[0].samples[0].finishReason, 'abort', "and stops the other prompt's generation");
});

t.test('shutdown finishes in-flight requests and refuses new ones', async (t) => {
  const { server, client } = await serve();
  const inFlight = client.chat.completions.create({ model: 'tiny', messages, max_tokens: 40, temperature: 0 });
  await new Promise((r) => setTimeout(r, 20));
  const closing = server.close();
  const r = await inFlight;
  t.equal(r.usage!.completion_tokens, 40, 'answered in full');
  await closing;
  await t.rejects(fetch(`${server.url}/health`), 'no longer listening');
});
