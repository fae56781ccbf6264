// One client for every OpenAI-compatible chat endpoint medix talks to (the reward's judge, the
// evaluation's candidate and judge): bounded concurrency, a per-request timeout, retries with
// exponential backoff and full jitter on transport errors, 429 and 5xx (a server's Retry-After is
// honoured), and availability tracking (when the endpoint last answered, since when it has been
// failing), so callers can tell a blip from an outage. Node's fetch rather than the `openai`
// package: the request is one POST, and owning the retry loop lets us count attempts, keep one
// concurrency bound across retries and report every failure precisely; openai-node retries inside
// its own loop and would hide them.
import type { ChatMessage } from '../tokenizer/types.js';

export interface ChatClientOptions {
  /** e.g. http://127.0.0.1:8000/v1 */
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** Requests in flight at most (default 32). */
  concurrency?: number;
  /** Per-attempt timeout in ms (default 60 s). */
  timeoutMs?: number;
  /** Attempts per request including the first (default 4). */
  maxAttempts?: number;
  /** First backoff in ms, doubled per retry, with full jitter (default 250). */
  backoffMs?: number;
  /** Longest wait before a retry in ms, Retry-After included (default 30 s). */
  maxBackoffMs?: number;
}

/** What the client knows about the endpoint's health. */
export interface Availability {
  /** ms timestamp of the last successful answer; null before the first. */
  lastSuccessAt: number | null;
  /** ms timestamp at which the current run of failures began (the failed request's start); null while healthy. */
  failingSince: number | null;
  /** Requests (after all their attempts) that failed since the last success. */
  consecutiveFailures: number;
  lastError: string | null;
}

export interface ChatCall {
  messages: ChatMessage[];
  temperature?: number;
  maxTokens?: number;
  /** Extra body fields, e.g. { chat_template_kwargs: { enable_thinking: false } }. */
  extra?: Record<string, unknown>;
}

export interface ChatAnswer {
  text: string;
  finishReason: string | null;
  attempts: number;
}

export class ChatEndpointError extends Error {
  override name = 'ChatEndpointError';
  constructor(
    message: string,
    readonly retryable: boolean,
    /** The server's Retry-After in ms, when it sent one. */
    readonly retryAfterMs: number | null = null,
  ) {
    super(message);
  }
}

/** Retry-After as seconds or an HTTP date, in ms from now; null when absent or unreadable. */
function retryAfterMs(header: string | null): number | null {
  if (!header) return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, at - Date.now());
}

export class ChatClient {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  private health: Availability = { lastSuccessAt: null, failingSince: null, consecutiveFailures: 0, lastError: null };
  /** Most requests observed in flight at once (benchmarks and tests read it). */
  peakInFlight = 0;
  /** Attempts sent, retries included. */
  attempts = 0;
  readonly url: string;

  constructor(readonly options: ChatClientOptions) {
    if (!/^https?:\/\//.test(options.baseUrl))
      throw new Error(`chat client: baseUrl must start with http:// or https://, got '${options.baseUrl}'`);
    this.url = `${options.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  }

  private async acquire(): Promise<void> {
    if (this.inFlight >= (this.options.concurrency ?? 32)) await new Promise<void>((r) => this.waiting.push(r));
    this.inFlight++;
    this.peakInFlight = Math.max(this.peakInFlight, this.inFlight);
  }

  private release(): void {
    this.inFlight--;
    this.waiting.shift()?.();
  }

  availability(): Availability {
    return { ...this.health };
  }

  /** Requests currently waiting for a slot or in flight. */
  get pending(): number {
    return this.inFlight + this.waiting.length;
  }

  /** Rejects with ChatEndpointError after the last attempt, or at once for errors a retry cannot fix (4xx but 429). */
  async chat(call: ChatCall): Promise<ChatAnswer> {
    await this.acquire();
    const started = Date.now();
    try {
      const attempts = this.options.maxAttempts ?? 4;
      for (let attempt = 1; ; attempt++) {
        try {
          this.attempts++;
          const answer = await this.once(call);
          this.health = { lastSuccessAt: Date.now(), failingSince: null, consecutiveFailures: 0, lastError: null };
          return { ...answer, attempts: attempt };
        } catch (e) {
          const err =
            e instanceof ChatEndpointError
              ? e
              : new ChatEndpointError(`${this.url}: ${describeFailure(e, this.options.timeoutMs ?? 60_000)}`, true);
          if (!err.retryable || attempt >= attempts) {
            this.recordFailure(started, err);
            throw err;
          }
          const maxWait = this.options.maxBackoffMs ?? 30_000;
          const jittered = Math.random() * (this.options.backoffMs ?? 250) * 2 ** (attempt - 1);
          await new Promise((r) => setTimeout(r, Math.min(maxWait, Math.max(jittered, err.retryAfterMs ?? 0))));
        }
      }
    } finally {
      this.release();
    }
  }

  private recordFailure(started: number, err: Error): void {
    const h = this.health;
    // A request that started before the last success says nothing about the endpoint now.
    if (h.lastSuccessAt !== null && started < h.lastSuccessAt) return;
    this.health = {
      lastSuccessAt: h.lastSuccessAt,
      failingSince: Math.min(h.failingSince ?? started, started),
      consecutiveFailures: h.consecutiveFailures + 1,
      lastError: err.message,
    };
  }

  private async once(call: ChatCall): Promise<Omit<ChatAnswer, 'attempts'>> {
    const body = {
      model: this.options.model,
      messages: call.messages,
      temperature: call.temperature ?? 0,
      max_tokens: call.maxTokens,
      ...call.extra,
    };
    const res = await fetch(this.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
      },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
    });
    const text = await res.text();
    if (!res.ok)
      throw new ChatEndpointError(
        `${this.url}: HTTP ${res.status}: ${text.slice(0, 300)}`,
        res.status === 429 || res.status >= 500,
        retryAfterMs(res.headers.get('retry-after')),
      );
    let choice: { message?: { content?: unknown }; finish_reason?: unknown } | undefined;
    try {
      choice = (JSON.parse(text) as { choices?: (typeof choice)[] }).choices?.[0];
    } catch {
      throw new ChatEndpointError(`${this.url}: reply is not JSON: ${text.slice(0, 200)}`, true);
    }
    if (typeof choice?.message?.content !== 'string')
      throw new ChatEndpointError(`${this.url}: reply has no choices[0].message.content`, true);
    return {
      text: choice.message.content,
      finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : null,
    };
  }
}

/** fetch's errors hide the cause (e.g. ECONNREFUSED) one level down; timeouts say which limit. */
function describeFailure(e: unknown, timeoutMs: number): string {
  const err = e as Error & { cause?: { code?: string; message?: string } };
  if (err?.name === 'TimeoutError') return `no answer within the per-request timeout of ${timeoutMs} ms`;
  const cause = err?.cause?.code ?? err?.cause?.message;
  return cause ? `${err.message} (${cause})` : String(err?.message ?? e);
}
