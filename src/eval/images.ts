// Benchmark images to data: URLs, the form the chat API's image_url content part takes when the
// server cannot read our disk. An image cell is read as training reads one (src/data's
// imageSources: paths confined to the data file's directory, symlinks leading out of it refused,
// data: URLs, bytes, {bytes, path} structs, lists). sharp reads each image once: that checks it is
// an image (a broken file is reported with its row, not sent to the model) and tells its format;
// formats chat servers commonly refuse (TIFF, BMP via libvips' loaders, ...) are re-encoded as PNG.
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { ImageFault, imageSources, type ImageSource } from '../data/index.js';

export class ImageError extends Error {}

const PASSTHROUGH: Record<string, string> = {
  jpeg: 'image/jpeg',
  png: 'image/png',
  webp: 'image/webp',
  gif: 'image/gif',
};

async function toDataUrl(bytes: Uint8Array, what: string): Promise<string> {
  let format: string | undefined;
  try {
    format = (await sharp(bytes).metadata()).format;
  } catch (e) {
    throw new ImageError(`${what}: not a readable image (${(e as Error).message})`);
  }
  const mime = format ? PASSTHROUGH[format] : undefined;
  if (mime) return `data:${mime};base64,${Buffer.from(bytes).toString('base64')}`;
  const png = await sharp(bytes).png().toBuffer();
  return `data:image/png;base64,${png.toString('base64')}`;
}

async function bytesOf(src: ImageSource, what: string): Promise<Uint8Array> {
  if ('bytes' in src) return src.bytes;
  // imageSources gives only bytes and paths for a cell; Parquet references are the data loader's.
  if (!('path' in src)) throw new ImageError(`${what}: unexpected image source`);
  try {
    return await readFile(src.path);
  } catch (e) {
    throw new ImageError(
      `${what}: cannot read image ${src.path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

/**
 * One cell of an image column as data: URLs. Accepts a path relative to `baseDir` (the data file's
 * directory), a base64 data: URL, raw bytes, a Hugging Face Image struct {bytes, path} (bytes win; as a
 * string they are base64, as JSON exports write them), or a list of these. null/undefined: none.
 */
export async function imageDataUrls(value: unknown, baseDir: string, what: string): Promise<string[]> {
  let sources: ImageSource[];
  try {
    sources = imageSources(value, baseDir);
  } catch (e) {
    if (e instanceof ImageFault) throw new ImageError(`${what}: ${e.message}`);
    throw e;
  }
  const out: string[] = [];
  for (const [i, src] of sources.entries()) {
    const where = sources.length > 1 || Array.isArray(value) ? `${what}[${i}]` : what;
    out.push(await toDataUrl(await bytesOf(src, where), where));
  }
  return out;
}
