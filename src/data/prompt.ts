// From a row's question to the prompt the policy sees: the question through data.format_prompt (a
// Jinja template; {{ content }} is the question, as EasyR1's format prompts), images placed where
// the text says <image> (or before the text when it has no placeholder; a single placeholder takes
// all of a row's images, and none for a text-only row, as the reference's format prompt relies on),
// an optional system message, then the model's own chat template. Also the prompt's length in tokens, which decides
// whether a row is filtered as overlong.
import { Template } from '@huggingface/jinja';
import { TokenizerError } from '../tokenizer/error.js';
import { encodeChatPrompt } from '../tokenizer/image-pads.js';
import type { ChatContentPart, ChatMessage, TextTokenizer } from '../tokenizer/types.js';
import { imageTokenCount, smartResize, type ImageSize, type ResizeBounds } from './images.js';
import { templateUses } from '../util/template-uses.js';

export const IMAGE_PLACEHOLDER = '<image>';

export interface PromptOptions {
  /** Jinja template of the user turn; `content` is the question. Absent: the question as it is. */
  formatPrompt?: string;
  /** What errors call the template (default data.format_prompt; the file, when it came from one). */
  formatPromptSource?: string;
  systemPrompt?: string;
  /** Qwen3's thinking switch for the chat template (the MediX format asks for its own <thinking>). */
  enableThinking?: boolean;
}

export interface EncodedPrompt {
  messages: ChatMessage[];
  /** The chat template's output. */
  text: string;
  /** Token ids of `text`, each image's pad repeated to its visual token count (what the model takes). */
  ids: number[];
  /** Tokens the prompt takes in the language model: ids.length. */
  length: number;
}

export class PromptError extends Error {
  override name = 'PromptError';
}

export class PromptFormatter {
  private readonly template: Template | null;

  constructor(
    private readonly tokenizer: TextTokenizer,
    private readonly o: PromptOptions & { resize: ResizeBounds },
  ) {
    const source = o.formatPromptSource ?? 'data.format_prompt';
    try {
      this.template = o.formatPrompt === undefined ? null : new Template(o.formatPrompt);
    } catch (e) {
      throw new PromptError(`${source}: not a valid Jinja template (${(e as Error).message})`);
    }
    // An undefined variable renders as nothing: a misspelt {{ content }} would leave every prompt without its question.
    if (this.template && !templateUses(this.template, 'content'))
      throw new PromptError(`${source}: never uses {{ content }} (the question), so no prompt would hold it`);
  }

  /** The user turn's text: the question through the format template. */
  userText(question: string): string {
    if (!this.template) return question;
    try {
      return this.template.render({ content: question });
    } catch (e) {
      throw new PromptError(
        `${this.o.formatPromptSource ?? 'data.format_prompt'}: rendering failed (${(e as Error).message})`,
      );
    }
  }

  messages(question: string, imageCount: number): ChatMessage[] {
    const text = this.userText(question);
    const pieces = text.split(IMAGE_PLACEHOLDER);
    const placeholders = pieces.length - 1;
    const images = (n: number) => Array.from({ length: n }, () => ({ type: 'image' as const }));
    let content: string | ChatContentPart[];
    if (imageCount === 0 && placeholders <= 1) content = pieces.join('');
    else if (placeholders === 0) content = [...images(imageCount), { type: 'text', text }];
    else if (placeholders === 1 || placeholders === imageCount) {
      // One placeholder (the recipes' format prompt) takes all of the row's images; otherwise one each.
      const perSlot = placeholders === 1 ? imageCount : 1;
      content = pieces.flatMap((piece, i): ChatContentPart[] => [
        ...(i > 0 ? images(perSlot) : []),
        ...(piece ? [{ type: 'text' as const, text: piece }] : []),
      ]);
    } else
      throw new PromptError(
        `the prompt has ${placeholders} ${IMAGE_PLACEHOLDER} placeholders but the row has ${imageCount} images`,
      );
    const messages: ChatMessage[] = [];
    if (this.o.systemPrompt) messages.push({ role: 'system', content: this.o.systemPrompt });
    messages.push({ role: 'user', content });
    return messages;
  }

  encode(question: string, imageSizes: readonly ImageSize[]): EncodedPrompt {
    const messages = this.messages(question, imageSizes.length);
    const visual = imageSizes.map((size) => imageTokenCount(smartResize(size, this.o.resize), this.o.resize.factor));
    try {
      const options = { addGenerationPrompt: true, enableThinking: this.o.enableThinking ?? false };
      const { text, ids } = encodeChatPrompt(this.tokenizer, messages, options, visual);
      return { messages, text, ids, length: ids.length };
    } catch (e) {
      // A row the model's template cannot take (an image for a text-only model) is that row's fault.
      if (e instanceof TokenizerError) throw new PromptError(e.message);
      throw e;
    }
  }
}
