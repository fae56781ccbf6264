// The tokenizer contract the rest of medix codes against (generation, serve, data, reward). The
// implementation (src/tokenizer/) wraps a well-kept JS tokenizer library and renders the model's
// own Jinja chat template.

/** One chat message as OpenAI-compatible APIs and HF chat templates take it. */
export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool';
  /** Plain text, or content parts (text and images) as the chat completions API sends them. */
  content: string | ChatContentPart[];
}

export type ChatContentPart =
  | { type: 'text'; text: string }
  | { type: 'image_url'; image_url: { url: string } }
  | { type: 'image'; image?: string };

export interface ChatTemplateOptions {
  /** Append the assistant header so the model starts answering (default true). */
  addGenerationPrompt?: boolean;
  /** Qwen3's thinking switch; templates that do not know it ignore it (default true, as Qwen3). */
  enableThinking?: boolean;
}

export interface TextTokenizer {
  /** Size of the id space the tokenizer can produce (including added/special tokens). */
  readonly vocabSize: number;
  /** Ids that end a generation (from generation_config.json / tokenizer_config.json). */
  readonly eosTokenIds: number[];
  readonly padTokenId: number | null;
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  decode(ids: ArrayLike<number>, options?: { skipSpecialTokens?: boolean }): string;
  /** Renders the model's chat template to text (tokenize it with encode(..., {addSpecialTokens: false})). */
  applyChatTemplate(messages: ChatMessage[], options?: ChatTemplateOptions): string;
}
