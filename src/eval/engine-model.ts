// The candidate run in-process: a GenerationEngine over a loaded checkpoint, with the model's own
// chat template. The engine decodes text only (the Qwen3-VL vision tower is not implemented), so a
// conversation with images is refused with a message rather than answered without its image.
import type { GenerationEngine } from '../generate/types.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { ChatModel, ChatReply, ChatRequest } from './chat.js';

export class EngineChatModel implements ChatModel {
  constructor(
    readonly name: string,
    private readonly engine: GenerationEngine,
    private readonly tokenizer: TextTokenizer,
  ) {}

  async chat(request: ChatRequest): Promise<ChatReply> {
    const hasImage = request.messages.some((m) => Array.isArray(m.content) && m.content.some((p) => p.type !== 'text'));
    if (hasImage) throw new Error(`${this.name}: the in-process engine reads text only; serve an image-capable model and pass --model-url`);
    const options = { addGenerationPrompt: true, enableThinking: request.thinking };
    const text = this.tokenizer.applyChatTemplate(request.messages, options);
    const promptIds = this.tokenizer.encode(text, { addSpecialTokens: false });
    const result = await this.engine.generate({ promptIds, params: { temperature: request.temperature, maxNewTokens: request.maxTokens } });
    const sample = result.samples[0];
    return { text: sample.text, finishReason: sample.finishReason };
  }
}
