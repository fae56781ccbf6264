// `medix serve`: an OpenAI-compatible HTTP API over the generation engine. node:http is enough for
// five routes, and owning the request lifecycle lets us enforce body limits before parsing, abort
// generation when a client disconnects, and drain in-flight requests on shutdown.
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { ZodType } from 'zod';
import { GenerationRequestError } from '../generate/engine.js';
import { chatRequestParts, imageParts } from '../model/vision/chat-images.js';
import type { ProcessedImage } from '../model/vision/image-processor.js';
import { TokenizerError } from '../tokenizer/error.js';
import type {
  GeneratedSample,
  GenerationEngine,
  GenerationRequest,
  GenerationResult,
  SamplingParams,
  TokenEvent,
} from '../generate/types.js';
import type { ChatMessage, TextTokenizer } from '../tokenizer/types.js';
import { ChatImageError, chatImages, type ServeImages } from './chat-images.js';
import { EventStream } from './event-stream.js';
import { apiKeyMatches, exposureWarning, hostAllowed, TokenBudget } from './guards.js';
import { chatRequestSchema, completionRequestSchema, type ChatRequest, type CompletionRequest } from './schemas.js';

export interface ServerOptions {
  engine: GenerationEngine;
  tokenizer: TextTokenizer;
  /** The name clients send as `model`. */
  modelName: string;
  host?: string;
  port?: number;
  apiKey?: string;
  /** Largest request body accepted (default 1 MiB). */
  maxBodyBytes?: number;
  /** max_tokens is capped to this (default 4096). */
  maxTokensCap?: number;
  /** Default of chat_template_kwargs.enable_thinking (default true, as Qwen3). */
  enableThinking?: boolean;
  /**
   * Most sample-tokens (prompts x n x max_tokens, after the cap) queued or running at once; a
   * request past it gets 429 with Retry-After (default 1,048,576).
   */
  maxQueuedTokens?: number;
  /** Host header names accepted besides the bound address (DNS rebinding protection). */
  allowHosts?: string[];
  /** Where the warning about an exposed server without a key goes (default: console.warn). */
  warn?: (line: string) => void;
  /** A vision model's image intake (closed with the server); absent: image parts are refused. */
  images?: ServeImages;
}

/** Seconds a client told 429 is asked to wait before retrying. */
export const RETRY_AFTER_SECONDS = 1;

export interface RunningServer {
  url: string;
  /** Stops accepting, lets in-flight requests finish, then closes the engine. */
  close(): Promise<void>;
}

/** What one generation starts from: token ids, and a vision model's images for their image tokens. */
type ChatPrompt = Pick<GenerationRequest, 'promptIds' | 'images'>;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type = 'invalid_request_error',
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}

/**
 * A chat logprobs entry. The engine reports only the sampled token's log-prob, so top_logprobs
 * holds that one token when asked for (the contract's minimum), never the other candidates.
 */
function chatLogprob(tokenizer: TextTokenizer, tokenId: number, logprob: number, top: number) {
  const token = tokenizer.decode([tokenId]);
  const entry = { token, logprob, bytes: [...Buffer.from(token, 'utf8')] };
  return { ...entry, top_logprobs: top > 0 ? [entry] : [] };
}

/** The legacy completions logprobs object (offsets count from the start of the generated text). */
function completionLogprobs(tokenizer: TextTokenizer, tokenIds: number[], logprobs: number[], top: number) {
  const tokens = tokenIds.map((id) => tokenizer.decode([id]));
  let offset = 0;
  const textOffset = tokens.map((tok) => {
    offset += tok.length;
    return offset - tok.length;
  });
  return {
    tokens,
    token_logprobs: logprobs,
    top_logprobs: top > 0 ? tokens.map((tok, j) => ({ [tok]: logprobs[j] })) : null,
    text_offset: textOffset,
  };
}

const usageOf = (promptTokens: number, samples: GeneratedSample[]) => {
  const completion = samples.reduce((n, s) => n + s.tokenIds.length, 0);
  return { prompt_tokens: promptTokens, completion_tokens: completion, total_tokens: promptTokens + completion };
};

/** Usage of a completions request over several prompts. */
const usageOfAll = (results: GenerationResult[]) =>
  usageOf(
    results.reduce((n, result) => n + result.promptTokens, 0),
    results.flatMap((result) => result.samples),
  );

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit)
      return reject(
        new HttpError(
          413,
          `request body of ${declared} bytes exceeds the limit of ${limit}`,
          'invalid_request_error',
          null,
          'body_too_large',
        ),
      );
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      // Past the limit the rest is read and dropped (not buffered): destroying the socket here would
      // lose the 413 answer, which goes out with `connection: close`.
      if (size > limit)
        reject(
          new HttpError(
            413,
            `request body exceeds the limit of ${limit} bytes`,
            'invalid_request_error',
            null,
            'body_too_large',
          ),
        );
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseBody<T>(text: string, schema: ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new HttpError(400, 'request body is not valid JSON');
  }
  const r = schema.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0];
    const param = issue.path.join('.') || null;
    throw new HttpError(400, `${param ?? 'body'}: ${issue.message}`, 'invalid_request_error', param);
  }
  return r.data;
}

export async function startServer(o: ServerOptions): Promise<RunningServer> {
  const limit = o.maxBodyBytes ?? 1 << 20;
  const cap = o.maxTokensCap ?? 4096;
  const inFlight = new Set<Promise<void>>();
  let closing = false;
  const host = o.host ?? '127.0.0.1';
  const budget = new TokenBudget(o.maxQueuedTokens ?? 1 << 20);
  const warning = exposureWarning(host, o.apiKey);
  if (warning) (o.warn ?? console.warn)(warning);

  /** Runs `work` with prompts x n x max_tokens reserved from the budget, or answers 429 / 400. */
  async function withinBudget<T>(prompts: number, params: SamplingParams, work: () => Promise<T>): Promise<T> {
    const cost = prompts * params.n! * params.maxNewTokens!;
    if (cost > budget.limit) {
      const message = `the request asks for ${cost} sample-tokens (prompts x n x max_tokens), more than this server queues (${budget.limit})`;
      throw new HttpError(400, message, 'invalid_request_error', null, 'request_too_large');
    }
    if (!budget.tryReserve(cost)) {
      const message = `the server is busy (${budget.queued} of ${budget.limit} sample-tokens queued); retry after ${RETRY_AFTER_SECONDS} s`;
      throw new HttpError(429, message, 'rate_limit_error', null, 'queue_full', {
        'retry-after': String(RETRY_AFTER_SECONDS),
      });
    }
    try {
      return await work();
    } finally {
      budget.release(cost);
    }
  }

  const samplingOf = (r: ChatRequest | CompletionRequest, maxTokens: number | null | undefined): SamplingParams => ({
    n: r.n ?? 1,
    maxNewTokens: Math.min(maxTokens ?? 256, cap),
    temperature: r.temperature ?? 1,
    topP: r.top_p ?? 1,
    topK: r.top_k ?? -1,
    minP: r.min_p ?? 0,
    repetitionPenalty: r.repetition_penalty ?? 1,
    seed: r.seed ?? undefined,
    stop: r.stop == null ? undefined : typeof r.stop === 'string' ? [r.stop] : r.stop,
  });

  const checkModel = (model: string) => {
    if (model !== o.modelName)
      throw new HttpError(
        404,
        `model '${model}' does not exist; this server serves '${o.modelName}'`,
        'invalid_request_error',
        'model',
        'model_not_found',
      );
  };

  /**
   * Aborts when the client goes away before its answer is complete. One listener per response, not
   * per generation: a completions request may run up to 64 prompts, past the emitter's warning limit.
   */
  const abortOnDisconnect = (res: http.ServerResponse): AbortSignal => {
    const abort = new AbortController();
    res.once('close', () => {
      if (!res.writableEnded) abort.abort();
    });
    return abort.signal;
  };

  /** Runs one generation; streams through `emit` when given. */
  async function generate(
    prompt: ChatPrompt,
    params: SamplingParams,
    signal: AbortSignal,
    emit?: (e: TokenEvent) => void,
  ): Promise<GenerationResult> {
    try {
      return await o.engine.generate({ ...prompt, params, signal, onToken: emit });
    } catch (e) {
      // The engine's request errors (n above the batch size, a prompt too long for the cache) are
      // the client's to fix; anything else is ours.
      if (e instanceof GenerationRequestError) throw new HttpError(400, e.message);
      throw e;
    }
  }

  /** The images of the chat (read, checked and preprocessed), or a 400 naming the part at fault. */
  async function imagesOf(r: ChatRequest): Promise<ProcessedImage[]> {
    const parts = imageParts(r.messages);
    if (parts.length === 0) return [];
    const { param } = parts[0];
    const refusal = `${param}: this server runs a text-only model; it cannot take images`;
    if (!o.images) throw new HttpError(400, refusal, 'invalid_request_error', param);
    try {
      return await chatImages(r.messages, o.images);
    } catch (e) {
      if (e instanceof ChatImageError) throw new HttpError(400, e.message, 'invalid_request_error', e.param);
      throw e;
    }
  }

  /**
   * The chat as the model's template renders it, each image's pad expanded to its tokens. The
   * template refusing the messages (roles or parts it does not take) is the client's to fix: 400.
   */
  async function chatPrompt(r: ChatRequest): Promise<ChatPrompt> {
    const images = await imagesOf(r);
    const enableThinking = r.chat_template_kwargs?.enable_thinking ?? o.enableThinking ?? true;
    const options = { addGenerationPrompt: true, enableThinking };
    try {
      return chatRequestParts(o.tokenizer, r.messages as ChatMessage[], options, images, o.images?.merge ?? 1);
    } catch (e) {
      if (e instanceof TokenizerError) throw new HttpError(400, e.message, 'invalid_request_error', 'messages');
      throw e;
    }
  }

  async function chat(body: string, res: http.ServerResponse): Promise<void> {
    const r = parseBody(body, chatRequestSchema);
    checkModel(r.model);
    const prompt = await chatPrompt(r);
    const params = samplingOf(r, r.max_completion_tokens ?? r.max_tokens);
    await withinBudget(1, params, () => chatAnswer(r, prompt, params, res));
  }

  async function chatAnswer(r: ChatRequest, prompt: ChatPrompt, params: SamplingParams, res: http.ServerResponse) {
    const id = `chatcmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    const base = { id, object: 'chat.completion.chunk', created, model: o.modelName };
    const logprobsOn = r.logprobs === true;
    const top = r.top_logprobs ?? 0;
    if (r.stream) {
      const roles = Array.from({ length: params.n! }, (_, i) => ({
        ...base,
        choices: [{ index: i, delta: { role: 'assistant', content: '' }, finish_reason: null }],
      }));
      const stream = new EventStream(res, roles);
      const result = await generate(prompt, params, abortOnDisconnect(res), (e) => {
        if (!e.textDelta && !logprobsOn) return;
        const lp = logprobsOn ? { logprobs: { content: [chatLogprob(o.tokenizer, e.tokenId, e.logprob, top)] } } : {};
        stream.send({
          ...base,
          choices: [{ index: e.sample, delta: { content: e.textDelta }, finish_reason: null, ...lp }],
        });
      });
      result.samples.forEach((s, i) =>
        stream.send({ ...base, choices: [{ index: i, delta: {}, finish_reason: s.finishReason }] }),
      );
      if (r.stream_options?.include_usage)
        stream.send({ ...base, choices: [], usage: usageOf(result.promptTokens, result.samples) });
      stream.end();
      return;
    }
    const result = await generate(prompt, params, abortOnDisconnect(res));
    sendJson(res, 200, {
      id,
      object: 'chat.completion',
      created,
      model: o.modelName,
      choices: result.samples.map((s, i) => ({
        index: i,
        message: { role: 'assistant', content: s.text },
        finish_reason: s.finishReason,
        logprobs: logprobsOn
          ? { content: s.tokenIds.map((tid, j) => chatLogprob(o.tokenizer, tid, s.logprobs[j], top)) }
          : null,
      })),
      usage: usageOf(result.promptTokens, result.samples),
    });
  }

  /** `prompt` in its four OpenAI forms (a text, texts, token ids, lists of token ids) as one id list per prompt. */
  const promptIdsOf = (prompt: CompletionRequest['prompt']): number[][] => {
    const encode = (text: string) => o.tokenizer.encode(text, { addSpecialTokens: false });
    if (typeof prompt === 'string') return [encode(prompt)];
    if (prompt.every((p) => typeof p === 'number')) return [prompt as number[]];
    return (prompt as (string | number[])[]).map((p) => (typeof p === 'string' ? encode(p) : p));
  };

  async function completions(body: string, res: http.ServerResponse): Promise<void> {
    const r = parseBody(body, completionRequestSchema);
    checkModel(r.model);
    const prompts = promptIdsOf(r.prompt);
    const params = samplingOf(r, r.max_tokens);
    await withinBudget(prompts.length, params, () => completionsAnswer(r, prompts, params, res));
  }

  async function completionsAnswer(
    r: CompletionRequest,
    prompts: number[][],
    params: SamplingParams,
    res: http.ServerResponse,
  ) {
    const id = `cmpl-${randomUUID()}`;
    const created = Math.floor(Date.now() / 1000);
    // Choice p * n + i is sample i of prompt p, streamed or not.
    const choiceIndex = (p: number, i: number) => p * params.n! + i;
    // One prompt the engine refuses fails the request: the other prompts' generations stop too.
    const failed = new AbortController();
    const signal = AbortSignal.any([abortOnDisconnect(res), failed.signal]);
    const generateAll = (emit?: (p: number, e: TokenEvent) => void) =>
      Promise.all(
        prompts.map((ids, p) =>
          generate({ promptIds: ids }, params, signal, emit && ((e) => emit(p, e))).catch((e: unknown) => {
            failed.abort();
            throw e;
          }),
        ),
      );
    if (r.stream) {
      const base = { id, object: 'text_completion', created, model: o.modelName };
      const stream = new EventStream(res);
      const results = await generateAll((p, e) => {
        if (!e.textDelta && r.logprobs == null) return;
        const logprobs =
          r.logprobs == null ? null : completionLogprobs(o.tokenizer, [e.tokenId], [e.logprob], r.logprobs);
        stream.send({
          ...base,
          choices: [{ index: choiceIndex(p, e.sample), text: e.textDelta, finish_reason: null, logprobs }],
        });
      });
      results.forEach((result, p) =>
        result.samples.forEach((s, i) =>
          stream.send({
            ...base,
            choices: [{ index: choiceIndex(p, i), text: '', finish_reason: s.finishReason, logprobs: null }],
          }),
        ),
      );
      if (r.stream_options?.include_usage) stream.send({ ...base, choices: [], usage: usageOfAll(results) });
      stream.end();
      return;
    }
    const results = await generateAll();
    const choices = results.flatMap((result, p) =>
      result.samples.map((s, i) => ({
        index: choiceIndex(p, i),
        text: s.text,
        finish_reason: s.finishReason,
        logprobs: r.logprobs == null ? null : completionLogprobs(o.tokenizer, s.tokenIds, s.logprobs, r.logprobs),
      })),
    );
    sendJson(res, 200, {
      id,
      object: 'text_completion',
      created,
      model: o.modelName,
      choices,
      usage: usageOfAll(results),
    });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const route = `${url.pathname.replace(/\/+$/, '')}`;
    if (!hostAllowed(req.headers.host, host, o.allowHosts ?? [])) {
      const message = `Host '${req.headers.host ?? ''}' is not this server's address (${host}); start it with --allow-host NAME to serve under another name`;
      throw new HttpError(403, message, 'invalid_request_error', null, 'host_not_allowed');
    }
    if (route === '/health') return sendJson(res, closing ? 503 : 200, { status: closing ? 'shutting down' : 'ok' });
    if (o.apiKey && !apiKeyMatches(req.headers.authorization, o.apiKey))
      throw new HttpError(
        401,
        'missing or wrong API key (Authorization: Bearer ...)',
        'authentication_error',
        null,
        'invalid_api_key',
      );
    const routes: Record<string, { method: string; run: () => Promise<void> | void }> = {
      '/v1/models': {
        method: 'GET',
        run: () =>
          sendJson(res, 200, {
            object: 'list',
            data: [{ id: o.modelName, object: 'model', created: 0, owned_by: 'medix' }],
          }),
      },
      '/v1/chat/completions': { method: 'POST', run: async () => chat(await readBody(req, limit), res) },
      '/v1/completions': { method: 'POST', run: async () => completions(await readBody(req, limit), res) },
    };
    const r = routes[route];
    if (!r)
      throw new HttpError(404, `no route ${req.method} ${url.pathname}`, 'invalid_request_error', null, 'not_found');
    if (req.method !== r.method) throw new HttpError(405, `${url.pathname} takes ${r.method}, not ${req.method}`);
    if (closing) throw new HttpError(503, 'the server is shutting down', 'server_error');
    await r.run();
  }

  const server = http.createServer((req, res) => {
    const work = handle(req, res).catch((e: unknown) => {
      if (!(e instanceof HttpError)) console.error(`medix serve: ${req.method} ${req.url}:`, e);
      const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message, 'server_error');
      if (res.headersSent) {
        if (!res.writableEnded)
          res.end(`data: ${JSON.stringify({ error: { message: err.message, type: err.type } })}\n\n`);
        return;
      }
      if (err.status === 413) res.setHeader('connection', 'close');
      for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
      sendJson(res, err.status, { error: { message: err.message, type: err.type, param: err.param, code: err.code } });
    });
    inFlight.add(work);
    void work.finally(() => inFlight.delete(work));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8000, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    url: `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`,
    async close() {
      closing = true;
      const stopped = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      await Promise.allSettled([...inFlight]);
      server.closeAllConnections();
      await stopped;
      await o.engine.close();
      await o.images?.pool.close();
    },
  };
}
