// Benchmark images to data: URLs, the form the chat API's image_url content part takes when the
// server cannot read our disk. sharp reads each image once: that checks it is an image (a broken
// file is reported with its row, not sent to the model) and tells its format; formats chat servers
// commonly refuse (TIFF, BMP via libvips' loaders, ...) are re-encoded as PNG.
import { readFile } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import sharp from 'sharp';

export class ImageError extends Error {}

const PASSTHROUGH: Record<string, string> = { jpeg: 'image/jpeg', png: 'image/png', webp: 'image/webp', gif: 'image/gif' };

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

async function readConfined(baseDir: string, path: string, what: string): Promise<Uint8Array> {
  const full = resolve(baseDir, path);
  const rel = relative(resolve(baseDir), full);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new ImageError(`${what}: image path '${path}' leaves the data directory`);
  try {
    return await readFile(full);
  } catch (e) {
    throw new ImageError(`${what}: cannot read image '${path}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
}

/**
 * One cell of an image column as data: URLs. Accepts a path relative to `baseDir` (the data file's
 * directory), a data: URL, raw bytes, a Hugging Face Image struct {bytes, path} (bytes win; as a
 * string they are base64, as JSON exports write them), or a list of these. null/undefined: none.
 */
export async function imageDataUrls(value: unknown, baseDir: string, what: string): Promise<string[]> {
  if (value === null || value === undefined) return [];
  if (Array.isArray(value)) {
    const out: string[] = [];
    for (const [i, v] of value.entries()) out.push(...(await imageDataUrls(v, baseDir, `${what}[${i}]`)));
    return out;
  }
  if (value instanceof Uint8Array) return [await toDataUrl(value, what)];
  if (typeof value === 'string') {
    if (value.startsWith('data:')) {
      const comma = value.indexOf(',');
      if (comma < 0 || !/;base64$/.test(value.slice(0, comma))) throw new ImageError(`${what}: only base64 data: URLs are supported`);
      return [await toDataUrl(Buffer.from(value.slice(comma + 1), 'base64'), what)];
    }
    return [await toDataUrl(await readConfined(baseDir, value, what), what)];
  }
  if (typeof value === 'object') {
    const { bytes, path } = value as { bytes?: unknown; path?: unknown };
    if (bytes instanceof Uint8Array) return [await toDataUrl(bytes, what)];
    if (typeof bytes === 'string' && bytes.length > 0) return [await toDataUrl(Buffer.from(bytes, 'base64'), what)];
    if (typeof path === 'string' && path.length > 0) return [await toDataUrl(await readConfined(baseDir, path, what), what)];
    throw new ImageError(`${what}: image struct has neither bytes nor path`);
  }
  throw new ImageError(`${what}: expected an image path, bytes or {bytes, path}, got ${typeof value}`);
}
