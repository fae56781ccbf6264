// A candidate or judge behind an OpenAI-compatible chat completions endpoint (vLLM, `medix serve`,
// a hosted API), through the shared chat client (bounded concurrency, timeouts, retries).
import { ChatClient } from '../judge/chat-client.js';
import type { ChatModel, ChatReply, ChatRequest } from './chat.js';

export class EndpointChatModel implements ChatModel {
  private readonly client: ChatClient;

  constructor(
    readonly name: string,
    baseUrl: string,
    apiKey?: string,
    timeoutMs = 600_000,
  ) {
    // The phases bound their own concurrency; the client must not queue below that.
    this.client = new ChatClient({ baseUrl, model: name, apiKey, timeoutMs, concurrency: 1024 });
  }

  async chat(request: ChatRequest): Promise<ChatReply> {
    const { messages, temperature, maxTokens, thinking } = request;
    const extra = thinking === undefined ? undefined : { chat_template_kwargs: { enable_thinking: thinking } };
    const a = await this.client.chat({ messages, temperature, maxTokens, extra });
    return { text: a.text, finishReason: a.finishReason };
  }
}
