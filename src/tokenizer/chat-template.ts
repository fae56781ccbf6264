// Renders a model's own Jinja chat template with @huggingface/jinja (the JS Jinja made for HF chat
// templates), passing the variables transformers' apply_chat_template passes: messages,
// add_generation_prompt, the special tokens of tokenizer_config.json, and template switches such as
// Qwen3's enable_thinking.
import { Template } from '@huggingface/jinja';

import { TokenizerError } from './error.js';
import type { JsonObject } from './json-file.js';
import type { ChatContentPart, ChatMessage, ChatTemplateOptions } from './types.js';

const ROLES = new Set(['system', 'user', 'assistant', 'tool']);
const PART_TYPES = new Set(['text', 'image_url', 'image']);

/** Where a template came from, for error messages. */
export interface ChatTemplateSource {
  text: string;
  file: string;
}

/**
 * The template transformers would pick: chat_template.jinja when present (transformers 5 saves it
 * there), else tokenizer_config.json's chat_template (a string, or a list of {name, template} of
 * which "default" is the one used for chat).
 */
export function pickChatTemplate(
  jinja: ChatTemplateSource | null,
  config: JsonObject,
  configFile: string,
): ChatTemplateSource | null {
  if (jinja) return jinja;
  const value = config.chat_template;
  if (value === undefined || value === null) return null;
  if (typeof value === 'string') return { text: value, file: `${configFile} (chat_template)` };
  if (Array.isArray(value)) {
    const named = value.find((t) => typeof t === 'object' && t !== null && (t as JsonObject).name === 'default');
    if (named && typeof (named as JsonObject).template === 'string')
      return { text: (named as JsonObject).template as string, file: `${configFile} (chat_template "default")` };
    throw new TokenizerError(
      `${configFile}: chat_template is a list without a {"name": "default", "template": ...} entry`,
    );
  }
  throw new TokenizerError(`${configFile}: chat_template must be a string or a list of named templates`);
}

/** Whether a template's text looks at image content parts (Qwen3-VL's does; Qwen3's does not). */
export function templateReadsImages(text: string): boolean {
  return /['"]image(_url)?['"]/.test(text);
}

export class ChatTemplate {
  private readonly template: Template;
  /**
   * Whether the template reads content parts itself (Qwen3-VL's does: it looks for 'image' parts).
   * Text-only templates such as Qwen3's concatenate message.content as a string, so parts are
   * flattened for them, and images are refused rather than rendered as garbage.
   */
  private readonly readsContentParts: boolean;

  constructor(
    private readonly source: ChatTemplateSource,
    /** bos_token, eos_token, ... as strings: templates may refer to them. */
    private readonly specialTokens: Record<string, string>,
  ) {
    try {
      this.template = new Template(source.text);
    } catch (err) {
      throw new TokenizerError(`${source.file}: chat template does not parse (${(err as Error).message})`);
    }
    this.readsContentParts = templateReadsImages(source.text);
  }

  render(messages: ChatMessage[], options: ChatTemplateOptions = {}): string {
    if (!Array.isArray(messages) || messages.length === 0)
      throw new TokenizerError('applyChatTemplate: messages must be a non-empty array');
    const prepared = messages.map((m, i) => this.prepareMessage(m, i));
    try {
      return this.template.render({
        ...this.specialTokens,
        messages: prepared,
        add_generation_prompt: options.addGenerationPrompt ?? true,
        enable_thinking: options.enableThinking ?? true,
      });
    } catch (err) {
      throw new TokenizerError(`${this.source.file}: rendering the chat template failed (${(err as Error).message})`);
    }
  }

  private prepareMessage(message: ChatMessage, index: number): ChatMessage {
    const where = `applyChatTemplate: messages[${index}]`;
    if (typeof message !== 'object' || message === null) throw new TokenizerError(`${where} is not an object`);
    if (!ROLES.has(message.role))
      throw new TokenizerError(
        `${where}.role ${JSON.stringify(message.role)} is not one of system, user, assistant, tool`,
      );
    const { content } = message;
    if (typeof content === 'string') return message;
    if (!Array.isArray(content))
      throw new TokenizerError(`${where}.content must be a string or an array of content parts`);
    content.forEach((part, j) => checkPart(part, `${where}.content[${j}]`));
    if (this.readsContentParts) return message;
    const image = content.findIndex((p) => p.type !== 'text');
    if (image >= 0)
      throw new TokenizerError(
        `${where}.content[${image}] is an image, but the chat template of ${this.source.file} has no image support`,
      );
    // Several text parts become one string, joined by newlines as vLLM does for text-only models.
    return { ...message, content: content.map((p) => (p as { text: string }).text).join('\n') };
  }
}

function checkPart(part: ChatContentPart, where: string): void {
  if (typeof part !== 'object' || part === null || !PART_TYPES.has(part.type))
    throw new TokenizerError(`${where}.type must be one of text, image_url, image`);
  if (part.type === 'text' && typeof part.text !== 'string') throw new TokenizerError(`${where}.text must be a string`);
  if (part.type === 'image_url' && typeof part.image_url?.url !== 'string')
    throw new TokenizerError(`${where}.image_url.url must be a string`);
}
