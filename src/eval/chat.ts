// The one thing evaluation needs from a model, candidate or judge: answer a chat. Endpoints
// (OpenAI-compatible servers) and the in-process engine both sit behind it, so the phases do not
// care where the model runs.
import type { ChatMessage } from '../tokenizer/types.js';

export interface ChatRequest {
  messages: ChatMessage[];
  temperature: number;
  maxTokens: number;
  /** false: the chat template's thinking is switched off (Qwen3's enable_thinking). Default: the model's. */
  thinking?: boolean;
}

export interface ChatReply {
  text: string;
  /** 'stop', 'length', ... as the server reports it; null when unknown. */
  finishReason: string | null;
}

export interface ChatModel {
  /** The model's name, recorded with the results (a served model name or a directory). */
  readonly name: string;
  /** Rejects on transport failure after the client's own retries; the caller records an error. */
  chat(request: ChatRequest): Promise<ChatReply>;
}
