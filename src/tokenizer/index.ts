// The tokenizer module: loading a model's tokenizer and chat template, and streaming detokenization.
export { loadTokenizer, defaultTokenizerDir } from './load.js';
export { HfTokenizer } from './hf-tokenizer.js';
export { IncrementalDetokenizer } from './stream.js';
export type { DetokenizerOptions } from './stream.js';
export { TokenizerError } from './error.js';
export type { ChatMessage, ChatContentPart, ChatTemplateOptions, TextTokenizer } from './types.js';
