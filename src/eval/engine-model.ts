// The candidate run in-process: a GenerationEngine over a loaded checkpoint, with the model's own
// chat template. A Qwen3-VL model answers questions with images: the benchmark's data: URLs are
// decoded and preprocessed on the image pool's threads, and the engine sees their pixels; a
// text-only model refuses a conversation with images rather than answer it without them.
import type { GenerationEngine } from '../generate/types.js';
import { chatRequestParts, dataUrlBytes, imageParts } from '../model/vision/chat-images.js';
import type { ImagePool } from '../model/vision/image-pool.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import type { ChatModel, ChatReply, ChatRequest } from './chat.js';

/** A vision model's image preprocessing: the pool, and spatial_merge_size (tokens per image). */
export interface EngineImages {
  pool: ImagePool;
  merge: number;
}

export class EngineChatModel implements ChatModel {
  constructor(
    readonly name: string,
    private readonly engine: GenerationEngine,
    private readonly tokenizer: TextTokenizer,
    private readonly images?: EngineImages,
  ) {}

  async chat(request: ChatRequest): Promise<ChatReply> {
    const parts = imageParts(request.messages);
    if (parts.length > 0 && !this.images)
      throw new Error(`${this.name}: a text-only model (no vision tower) cannot answer questions with images`);
    const images = await Promise.all(
      parts.map(({ param, url }) => {
        const bytes = dataUrlBytes(url);
        if (!bytes) throw new Error(`${param}: the in-process model takes images as base64 data: URLs`);
        return this.images!.pool.process({ bytes }, param);
      }),
    );
    const options = { addGenerationPrompt: true, enableThinking: request.thinking };
    const prompt = chatRequestParts(this.tokenizer, request.messages, options, images, this.images?.merge ?? 1);
    const params = { temperature: request.temperature, maxNewTokens: request.maxTokens };
    const result = await this.engine.generate({ ...prompt, params });
    const sample = result.samples[0];
    return { text: sample.text, finishReason: sample.finishReason };
  }

  /** Releases the image pool's threads. */
  async close(): Promise<void> {
    await this.images?.pool.close();
  }
}
