// A candidate or judge behind an OpenAI-compatible chat completions endpoint (vLLM, `medix serve`,
// a hosted API). TEMPORARY: a single plain request per call, until the shared judge client
// (src/judge/: bounded concurrency, timeouts, retries with backoff) lands and replaces this.
import type { ChatModel, ChatReply, ChatRequest } from './chat.js';

export class EndpointChatModel implements ChatModel {
  constructor(
    readonly name: string,
    private readonly baseUrl: string,
    private readonly apiKey?: string,
    private readonly timeoutMs = 600_000,
  ) {}

  async chat(request: ChatRequest): Promise<ChatReply> {
    const url = `${this.baseUrl.replace(/\/+$/, '')}/chat/completions`;
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}) },
      body: JSON.stringify({ model: this.name, messages: request.messages, temperature: request.temperature, max_tokens: request.maxTokens }),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const body = await res.text();
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}: ${body.slice(0, 300)}`);
    const choice = (JSON.parse(body) as { choices?: { message?: { content?: unknown }; finish_reason?: unknown }[] }).choices?.[0];
    if (typeof choice?.message?.content !== 'string') throw new Error(`${url}: reply has no choices[0].message.content`);
    return { text: choice.message.content, finishReason: typeof choice.finish_reason === 'string' ? choice.finish_reason : null };
  }
}
