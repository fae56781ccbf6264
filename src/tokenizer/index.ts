// The tokenizer module: loading a model's tokenizer and chat template, and streaming detokenization.
export { loadTokenizer, defaultTokenizerDir } from './load.js';
export { HfTokenizer } from './hf-tokenizer.js';
export { IncrementalDetokenizer } from './stream.js';
export type { DetokenizerOptions } from './stream.js';
export { TokenizerError } from './error.js';
export { encodeChatPrompt, expandImagePads, imagePadId, IMAGE_PAD } from './image-pads.js';
export type { EncodedChat } from './image-pads.js';
export type { ChatMessage, ChatContentPart, ChatTemplateOptions, TextTokenizer } from './types.js';
