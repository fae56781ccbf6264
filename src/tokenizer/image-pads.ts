// Image tokens in prompts: a Qwen3-VL chat template writes one <|image_pad|> per image part, and the
// language model takes one token per merged patch of the image, so transformers' processor repeats
// each pad to its image's count. Every prompt medix builds with images (training rows, generate,
// serve, eval) goes through encodeChatPrompt, so they all expand the same way.
import { TokenizerError } from './error.js';
import type { ChatMessage, ChatTemplateOptions, TextTokenizer } from './types.js';

export const IMAGE_PAD = '<|image_pad|>';

export interface EncodedChat {
  /** The chat template's output (one pad per image). */
  text: string;
  /** Its token ids with each image's pad repeated to the image's token count. */
  ids: number[];
}

/** The id of <|image_pad|> in the tokenizer's vocabulary; a tokenizer without it cannot take images. */
export function imagePadId(tokenizer: TextTokenizer): number {
  const ids = tokenizer.encode(IMAGE_PAD, { addSpecialTokens: false });
  if (ids.length !== 1)
    throw new TokenizerError(`the tokenizer has no ${IMAGE_PAD} token, so its prompts cannot hold images`);
  return ids[0];
}

/** `ids` with the k-th pad repeated counts[k] times; the pads must be exactly one per image. */
export function expandImagePads(ids: readonly number[], padId: number, counts: readonly number[]): number[] {
  const pads = ids.reduce((n, id) => n + (id === padId ? 1 : 0), 0);
  if (pads !== counts.length)
    throw new TokenizerError(`the chat template wrote ${pads} ${IMAGE_PAD} token(s) for ${counts.length} image(s)`);
  let image = 0;
  return ids.flatMap((id) => (id === padId ? Array<number>(counts[image++]).fill(padId) : [id]));
}

/**
 * The chat through the model's template, tokenized (special tokens as text), with the image pads
 * expanded: imageTokens[k] is the k-th image part's token count (none: a text chat).
 */
export function encodeChatPrompt(
  tokenizer: TextTokenizer,
  messages: ChatMessage[],
  options: ChatTemplateOptions,
  imageTokens: readonly number[] = [],
): EncodedChat {
  const text = tokenizer.applyChatTemplate(messages, options);
  const ids = tokenizer.encode(text, { addSpecialTokens: false });
  return { text, ids: imageTokens.length === 0 ? ids : expandImagePads(ids, imagePadId(tokenizer), imageTokens) };
}
