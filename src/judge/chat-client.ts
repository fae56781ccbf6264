// One client for every OpenAI-compatible chat endpoint medix talks to (the reward's judge, the
// evaluation's candidate and judge): bounded concurrency, a per-request timeout, retries with
// exponential backoff and full jitter on transport errors, 429 and 5xx, and a record of when the
// endpoint last answered, so callers can tell a blip from an outage. Plain fetch: the request is
// one POST, and owning the retry loop lets us report every failure precisely.
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
  ) {
    super(message);
  }
}

export class ChatClient {
  private inFlight = 0;
  private readonly waiting: (() => void)[] = [];
  /** ms timestamp of the last successful answer (construction time until then). */
  lastSuccess = Date.now();
  /** Most requests observed in flight at once (benchmarks and tests read it). */
  peakInFlight = 0;
  readonly url: string;

  constructor(readonly options: ChatClientOptions) {
    if (!/^https?:\/\//.test(options.baseUrl)) throw new Error(`chat client: baseUrl must start with http:// or https://, got '${options.baseUrl}'`);
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

  async chat(call: ChatCall): Promise<ChatAnswer> {
    await this.acquire();
    try {
      const attempts = this.options.maxAttempts ?? 4;
      for (let attempt = 1; ; attempt++) {
        try {
          const answer = await this.once(call);
          this.lastSuccess = Date.now();
          return { ...answer, attempts: attempt };
        } catch (e) {
          const err = e instanceof ChatEndpointError ? e : new ChatEndpointError(`${this.url}: ${(e as Error).message}`, true);
          if (!err.retryable || attempt >= attempts) throw err;
          const cap = (this.options.backoffMs ?? 250) * 2 ** (attempt - 1);
          await new Promise((r) => setTimeout(r, Math.random() * cap));
        }
      }
    } finally {
      this.release();
    }
  }

  private async once(call: ChatCall): Promise<Omit<ChatAnswer, 'attempts'>> {
    const body = { model: this.options.model, messages: call.messages, temperature: call.temperature ?? 0, max_tokens: call.maxTokens, ...call.extra };
    const res = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(this.options.timeoutMs ?? 60_000),
    });
    const text = await res.text();
    if (!res.ok) throw new ChatEndpointError(`${this.url}: HTTP ${res.status}: ${text.slice(0, 300)}`, res.status === 429 || res.status >= 500);
    let choice: { message?: { content?: unknown }; finish_reason?: unknown } | undefined;
    try {
      choice = (JSON.parse(text) as { choices?: (typeof choice)[] }).choices?.[0];
    } catch {
      throw new ChatEndpointError(`${this.url}: reply is not JSON: ${text.slice(0, 200)}`, true);
    }
    if (typeof choice?.message?.content !== 'string') throw new ChatEndpointError(`${this.url}: reply has no choices[0].message.content`, true);
    return { text: choice.message.content, finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : null };
  }
}
