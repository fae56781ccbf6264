// TextTokenizer over a Hugging Face tokenizer.json, encoded and decoded by @huggingface/tokenizers
// (the pure-JS port of HF tokenizers that transformers.js uses), with the model's chat template.
import { Tokenizer } from '@huggingface/tokenizers';

import type { ChatTemplate } from './chat-template.js';
import { TokenizerError } from './error.js';
import type { JsonObject } from './json-file.js';
import type { ChatMessage, ChatTemplateOptions, TextTokenizer } from './types.js';

/** The parsed files of a model directory, each with the path its errors should name. */
export interface TokenizerFiles {
  tokenizer: { json: JsonObject; file: string };
  config: { json: JsonObject; file: string };
  /** generation_config.json, where the model's end-of-generation ids live; null when absent. */
  generation: { json: JsonObject; file: string } | null;
  /** Built from the chat template source; null when the directory has none. */
  chatTemplate: ((specialTokens: Record<string, string>) => ChatTemplate) | null;
  /** What to name in "has no chat template" errors. */
  dir: string;
}

export class HfTokenizer implements TextTokenizer {
  readonly vocabSize: number;
  readonly eosTokenIds: number[];
  readonly padTokenId: number | null;
  /** The special tokens of tokenizer_config.json by role (eos_token, pad_token, ...). */
  readonly specialTokens: Readonly<Record<string, string>>;
  private readonly tokenizer: Tokenizer;
  private readonly template: ChatTemplate | null;
  private readonly dir: string;

  constructor(files: TokenizerFiles) {
    const { tokenizer, config, generation } = files;
    const model = tokenizer.json.model;
    if (typeof model !== 'object' || model === null || typeof (model as JsonObject).type !== 'string')
      throw new TokenizerError(`${tokenizer.file}: field "model" must be an object with a "type"`);
    try {
      this.tokenizer = new Tokenizer(tokenizer.json, config.json);
    } catch (err) {
      throw new TokenizerError(`${tokenizer.file}: @huggingface/tokenizers cannot load it (${(err as Error).message})`);
    }
    let maxId = -1;
    for (const id of this.tokenizer.get_vocab(true).values()) maxId = Math.max(maxId, id);
    this.vocabSize = maxId + 1;
    this.specialTokens = specialTokenStrings(config.json);
    this.eosTokenIds = this.resolveEos(files);
    this.padTokenId = this.resolvePad(config, generation);
    this.template = files.chatTemplate ? files.chatTemplate({ ...this.specialTokens }) : null;
    this.dir = files.dir;
  }

  encode(text: string, options: { addSpecialTokens?: boolean } = {}): number[] {
    if (typeof text !== 'string') throw new TokenizerError(`encode: text must be a string, got ${typeof text}`);
    return this.tokenizer.encode(text, { add_special_tokens: options.addSpecialTokens ?? true }).ids;
  }

  decode(ids: ArrayLike<number>, options: { skipSpecialTokens?: boolean } = {}): string {
    const list = Array.from(ids);
    list.forEach((id, i) => {
      if (!Number.isInteger(id) || id < 0 || id >= this.vocabSize)
        throw new TokenizerError(`decode: ids[${i}] = ${id} is not a token id (vocabulary size ${this.vocabSize})`);
    });
    if (list.length === 0) return ''; // the library refuses an empty list
    return this.tokenizer.decode(list, { skip_special_tokens: options.skipSpecialTokens ?? false });
  }

  applyChatTemplate(messages: ChatMessage[], options?: ChatTemplateOptions): string {
    if (!this.template)
      throw new TokenizerError(
        `${this.dir}: no chat template (neither chat_template.jinja nor a chat_template in tokenizer_config.json)`,
      );
    return this.template.render(messages, options);
  }

  /** The id of a token string, or undefined when the vocabulary has no such token. */
  tokenToId(token: string): number | undefined {
    return this.tokenizer.token_to_id(token);
  }

  private resolveEos({ config, generation }: TokenizerFiles): number[] {
    // generation_config.json is what generate() stops on in transformers; Qwen3 lists both
    // <|im_end|> and <|endoftext|> there, while tokenizer_config.json names only one eos_token.
    const fromGeneration = generation?.json.eos_token_id;
    if (fromGeneration !== undefined && fromGeneration !== null) {
      const ids = Array.isArray(fromGeneration) ? fromGeneration : [fromGeneration];
      ids.forEach((id) => this.checkId(id, `${generation!.file}: eos_token_id`));
      return ids as number[];
    }
    const eos = this.specialTokens.eos_token;
    return eos === undefined ? [] : [this.idOfSpecial(eos, `${config.file}: eos_token`)];
  }

  private resolvePad(config: TokenizerFiles['config'], generation: TokenizerFiles['generation']): number | null {
    const pad = this.specialTokens.pad_token;
    if (pad !== undefined) return this.idOfSpecial(pad, `${config.file}: pad_token`);
    const fromGeneration = generation?.json.pad_token_id;
    if (fromGeneration === undefined || fromGeneration === null) return null;
    this.checkId(fromGeneration, `${generation!.file}: pad_token_id`);
    return fromGeneration as number;
  }

  private idOfSpecial(token: string, where: string): number {
    const id = this.tokenizer.token_to_id(token);
    if (id === undefined) throw new TokenizerError(`${where} ${JSON.stringify(token)} is not in the vocabulary`);
    return id;
  }

  private checkId(id: unknown, where: string): void {
    if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= this.vocabSize)
      throw new TokenizerError(`${where} must be token ids below ${this.vocabSize}, got ${JSON.stringify(id)}`);
  }
}

/**
 * tokenizer_config.json's bos_token, eos_token, pad_token, ... as plain strings. They appear as
 * strings or as serialised AddedToken objects ({"content": ...}); null means "none".
 */
function specialTokenStrings(config: JsonObject): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(config)) {
    if (!key.endsWith('_token')) continue;
    if (typeof value === 'string') out[key] = value;
    else if (typeof value === 'object' && value !== null && typeof (value as JsonObject).content === 'string')
      out[key] = (value as JsonObject).content as string;
  }
  return out;
}
