// The images of a chat as the chat completions API sends them (image_url content parts), and the
// generation request they make with the chat: the model's template with each image's pad expanded
// to its tokens, and the images in the order of their parts. `medix serve`, in-process `medix eval`
// and `medix generate` build their Qwen3-VL requests here.
import type { GenerationRequest } from '../../generate/types.js';
import { encodeChatPrompt } from '../../tokenizer/image-pads.js';
import type { ChatContentPart, ChatMessage, ChatTemplateOptions, TextTokenizer } from '../../tokenizer/types.js';
import { visualTokenCount, type ProcessedImage } from './image-processor.js';

export interface ImagePart {
  /** The part's OpenAI parameter path: messages.i.content.j. */
  param: string;
  url: string;
}

/** The image parts of the messages, in order. */
export function imageParts(messages: readonly { content: string | ChatContentPart[] }[]): ImagePart[] {
  return messages.flatMap((m, i) =>
    typeof m.content === 'string'
      ? []
      : m.content.flatMap((p, j) =>
          p.type === 'image_url' ? [{ param: `messages.${i}.content.${j}`, url: p.image_url.url }] : [],
        ),
  );
}

/** The bytes of a base64 data: URL whose type is one of `types` (e.g. image/png); null for any other URL. */
export function dataUrlBytes(url: string, types: RegExp = /image\/[\w.+-]+/): Uint8Array | null {
  const m = /^data:([^;,]+);base64,/i.exec(url);
  if (!m || !new RegExp(`^(?:${types.source})$`, 'i').test(m[1])) return null;
  return Buffer.from(url.slice(m[0].length), 'base64');
}

/** The prompt ids and images of a chat whose image parts are `images`, in order. */
export function chatRequestParts(
  tokenizer: TextTokenizer,
  messages: ChatMessage[],
  options: ChatTemplateOptions,
  images: ProcessedImage[],
  merge: number,
): Pick<GenerationRequest, 'promptIds' | 'images'> {
  const counts = images.map((im) => visualTokenCount(im, merge));
  return { promptIds: encodeChatPrompt(tokenizer, messages, options, counts).ids, images };
}
