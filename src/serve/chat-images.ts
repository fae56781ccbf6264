// The images of a chat request: OpenAI image_url content parts read as base64 data: URLs, or as
// files only when the server was started with --allow-local-images DIR and the file (symlinks
// resolved) lies in DIR; http(s) URLs are never fetched (a server that fetches what clients name
// can be made to reach hosts they cannot). Every limit is checked before the image is decoded: the
// count per request, the bytes of each image, and its pixels (read from the header, so a small file
// that decodes to a huge bitmap is refused). Decoding and preprocessing run on the image pool's
// worker threads, off the thread that serves requests.
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { confinedImagePath, ImageFault, imageSize, type ImageSource } from '../data/images.js';
import type { ImagePool } from '../model/vision/image-pool.js';
import { dataUrlBytes, imageParts } from '../model/vision/chat-images.js';
import type { ProcessedImage } from '../model/vision/image-processor.js';
import type { ChatContentPart } from '../tokenizer/types.js';

export interface ImageLimits {
  /** Most images in one request. */
  maxImages: number;
  /** Most bytes of one image file (after base64 decoding). */
  maxImageBytes: number;
  /** Most pixels (width x height as stored) of one image. */
  maxImagePixels: number;
}

export const DEFAULT_IMAGE_LIMITS: ImageLimits = { maxImages: 8, maxImageBytes: 20 << 20, maxImagePixels: 4096 * 4096 };

export interface ServeImages {
  pool: ImagePool;
  /** spatial_merge_size: an image of grid (t, h, w) takes t*h*w/merge^2 tokens. */
  merge: number;
  limits: ImageLimits;
  /** Local image files are read only inside this directory; absent: none are. */
  allowLocalImages?: string;
}

/** A request's fault in one image part: `param` is messages.i.content.j. */
export class ChatImageError extends Error {
  constructor(
    readonly param: string,
    message: string,
  ) {
    super(`${param}: ${message}`);
  }
}

type Message = { content: string | ChatContentPart[] };

/** Where a part's image comes from, under the server's rules; sizes the bytes. */
function sourceOf(url: string, o: ServeImages): { source: ImageSource; bytes: number } {
  const data = dataUrlBytes(url, /image\/(?:png|jpeg)/);
  if (data) return { source: { bytes: data }, bytes: data.length };
  if (url.startsWith('data:'))
    throw new Error('a data: URL must be base64 image/png or image/jpeg (data:image/png;base64,...)');
  if (/^https?:/i.test(url)) throw new Error('this server never fetches http(s) URLs; send the image as a data: URL');
  if (/^[a-z][a-z0-9+.-]*:/i.test(url) && !url.startsWith('file:'))
    throw new Error(`unsupported image URL scheme ${url.split(':')[0]}: (data: URLs, or --allow-local-images files)`);
  if (!o.allowLocalImages)
    throw new Error('local image files are off; the server reads them only when started with --allow-local-images DIR');
  let path: string;
  try {
    path = url.startsWith('file:') ? fileURLToPath(url) : url;
  } catch (e) {
    throw new Error(`not a file URL (${(e as Error).message})`);
  }
  const real = confinedImagePath(o.allowLocalImages, path, 'the --allow-local-images directory');
  return { source: { path: real }, bytes: statSync(real).size };
}

const tooMany = (limit: string) => `more than this server takes (${limit})`;

/** Reads, checks and preprocesses the images of a chat request, in order. */
export async function chatImages(messages: readonly Message[], o: ServeImages): Promise<ProcessedImage[]> {
  const parts = imageParts(messages);
  const { maxImages, maxImageBytes, maxImagePixels } = o.limits;
  if (parts.length > maxImages) {
    const message = `the request has ${parts.length} images, ${tooMany(`--max-images ${maxImages}`)}`;
    throw new ChatImageError(parts[maxImages].param, message);
  }
  const sources = parts.map(({ param, url }) => {
    try {
      const { source, bytes } = sourceOf(url, o);
      if (bytes > maxImageBytes)
        throw new Error(`the image has ${bytes} bytes, ${tooMany(`--max-image-bytes ${maxImageBytes}`)}`);
      return source;
    } catch (e) {
      throw new ChatImageError(param, (e as Error).message);
    }
  });
  return Promise.all(
    sources.map(async (source, k) => {
      const { param } = parts[k];
      try {
        const { width, height } = await imageSize(source);
        const pixels = `${width} x ${height} pixels`;
        if (width * height > maxImagePixels)
          throw new ImageFault(`the image has ${pixels}, ${tooMany(`--max-image-pixels ${maxImagePixels}`)}`);
        return await o.pool.process(source, param);
      } catch (e) {
        if (e instanceof ImageFault) throw new ChatImageError(param, e.message.replace(`${param}: `, ''));
        throw e;
      }
    }),
  );
}
