// Images of a training row: where each comes from (inline bytes or a file confined to the dataset's
// directory), its size (checked when the data loads, so an unreadable image is a bad row with its
// file and row, not a failure in the middle of a step), and its pixels (decoded with sharp to RGB
// and resized to the patch grid the way Qwen-VL's image processor does).
import { readFileSync, realpathSync } from 'node:fs';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import sharp from 'sharp';
import { resizeBicubic } from '../model/vision/resize.js';
import { readParquetCell } from './records.js';

/**
 * An image of a row: inline bytes (base64 in JSONL), a file inside the dataset's directory, or bytes
 * stored in a Parquet row, read again when needed so a large data set's images never sit in memory.
 */
export type ImageSource = { bytes: Uint8Array } | { path: string } | { parquet: ParquetImageRef };

export interface ParquetImageRef {
  file: string;
  /** 1-based row. */
  row: number;
  column: string;
  /** Position among the row's images (imageSources order). */
  index: number;
  /** The directory the row's image paths resolve against. */
  baseDir: string;
}

export interface ImageSize {
  width: number;
  height: number;
}

export interface DecodedImage extends ImageSize {
  /** RGB, 3 bytes a pixel, row-major, after resizing. */
  pixels: Uint8Array;
  /** The size stored in the file, before resizing. */
  original: ImageSize;
}

export interface ResizeBounds {
  /** Side lengths become multiples of this: patch size x spatial merge (Qwen3-VL: 16 x 2; Qwen2.5-VL: 14 x 2). */
  factor: number;
  minPixels: number;
  maxPixels: number;
}

/** A fault in one image of a row; the loader turns it into a bad-row report naming file and row. */
export class ImageFault extends Error {
  override name = 'ImageFault';
}

/** True when `child` is `dir` or lies below it (both absolute and normalised). */
function isInside(dir: string, child: string): boolean {
  const rel = relative(dir, child);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/**
 * Resolves an image path against the dataset's directory (or another, `dirName` in messages) and
 * refuses any that leaves it: '../', absolute paths elsewhere, and symlinks whose target lies outside
 * (checked on the real paths, so a link inside the directory cannot expose the rest of the disk to a
 * data file someone else wrote).
 */
export function confinedImagePath(baseDir: string, path: string, dirName = 'the dataset directory'): string {
  if (path === '') throw new ImageFault('empty image path');
  const root = resolve(baseDir);
  const full = resolve(root, path);
  if (!isInside(root, full)) throw new ImageFault(`image path '${path}' leaves ${dirName} ${root}`);
  let real: string;
  try {
    real = realpathSync(full);
  } catch (e) {
    throw new ImageFault(`cannot read image '${path}' (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  if (!isInside(realpathSync(root), real))
    throw new ImageFault(`image path '${path}' is a link to ${real}, outside ${dirName}`);
  return real;
}

/**
 * The images of one cell of the image column: null or absent (none), a list, a path string, a
 * base64 data: URL, raw bytes, or a Hugging Face Image struct {bytes, path} (bytes win when present;
 * as a string they are base64, which is how JSON exports of datasets write them).
 */
export function imageSources(cell: unknown, baseDir: string): ImageSource[] {
  if (cell === null || cell === undefined) return [];
  if (Array.isArray(cell)) return cell.flatMap((c, i) => prefixed(`[${i}]`, () => imageSources(c, baseDir)));
  if (cell instanceof Uint8Array) return [{ bytes: cell }];
  if (typeof cell === 'string') {
    const dataUrl = /^data:[^,]*;base64,/.exec(cell);
    return [
      dataUrl
        ? { bytes: Buffer.from(cell.slice(dataUrl[0].length), 'base64') }
        : { path: confinedImagePath(baseDir, cell) },
    ];
  }
  if (typeof cell === 'object') {
    const { bytes, path } = cell as { bytes?: unknown; path?: unknown };
    if (bytes instanceof Uint8Array) return [{ bytes }];
    if (typeof bytes === 'string' && bytes !== '') return [{ bytes: Buffer.from(bytes, 'base64') }];
    if (typeof path === 'string' && path !== '') return [{ path: confinedImagePath(baseDir, path) }];
    throw new ImageFault('image entry has neither bytes nor a path');
  }
  throw new ImageFault(`image entry must be a path, bytes or {bytes, path}, got ${typeof cell}`);
}

function prefixed<T>(prefix: string, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof ImageFault) throw new ImageFault(`${prefix} ${e.message}`);
    throw e;
  }
}

async function input(src: ImageSource): Promise<Uint8Array> {
  if ('bytes' in src) return src.bytes;
  if ('parquet' in src) {
    const ref = src.parquet;
    const again = imageSources(await readParquetCell(ref.file, ref.row, ref.column), ref.baseDir)[ref.index];
    if (!again || 'parquet' in again)
      throw new ImageFault(
        `${ref.file}: row ${ref.row} no longer has image ${ref.index + 1} (the file changed since it was loaded)`,
      );
    return input(again);
  }
  try {
    return readFileSync(src.path);
  } catch (e) {
    throw new ImageFault(
      `cannot read image ${src.path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

/** The stored size, read from the image header (cheap: no pixels are decoded). */
export async function imageSize(src: ImageSource): Promise<ImageSize> {
  try {
    const m = await sharp(await input(src)).metadata();
    if (!m.width || !m.height) throw new Error('no size in the header');
    return { width: m.width, height: m.height };
  } catch (e) {
    if (e instanceof ImageFault) throw e;
    throw new ImageFault(`not a readable image (${(e as Error).message})`);
  }
}

/** Python's round(): halves go to the even neighbour (the reference resize rounds this way). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Qwen-VL's smart resize: each side rounded to a multiple of `factor` (at least one factor), then
 * scaled down (floor) when the area exceeds maxPixels or up (ceil) when below minPixels, keeping the
 * aspect ratio as closely as the grid allows. Aspect ratios above 200 are refused, as there.
 */
export function smartResize(size: ImageSize, b: ResizeBounds): ImageSize {
  const { width: w, height: h } = size;
  const f = b.factor;
  if (Math.max(w, h) / Math.min(w, h) > 200) throw new ImageFault(`aspect ratio ${w}x${h} is above 200`);
  let hb = Math.max(f, roundHalfEven(h / f) * f);
  let wb = Math.max(f, roundHalfEven(w / f) * f);
  if (hb * wb > b.maxPixels) {
    const beta = Math.sqrt((h * w) / b.maxPixels);
    hb = Math.max(f, Math.floor(h / beta / f) * f);
    wb = Math.max(f, Math.floor(w / beta / f) * f);
  } else if (hb * wb < b.minPixels) {
    const beta = Math.sqrt(b.minPixels / (h * w));
    hb = Math.ceil((h * beta) / f) * f;
    wb = Math.ceil((w * beta) / f) * f;
  }
  return { width: wb, height: hb };
}

/** Visual tokens an image of this (resized) size becomes in the language model: one per factor x factor cell. */
export function imageTokenCount(resized: ImageSize, factor: number): number {
  return (resized.width / factor) * (resized.height / factor);
}

/** RGB bytes of an image at its stored size. */
export interface RgbImage extends ImageSize {
  /** 3 bytes a pixel, row-major. */
  pixels: Uint8Array;
}

/**
 * Decodes to 8-bit RGB at the stored size: alpha dropped, grey expanded (as PIL's convert('RGB')),
 * 16-bit samples scaled to 8 bits (v / 257, where PIL would clip them at 255).
 */
export async function decodeRgb(src: ImageSource): Promise<RgbImage> {
  try {
    // sharp scales 16-bit samples (medical exports) to 8 bits on the way to sRGB.
    const rgb = await sharp(await input(src))
      .removeAlpha()
      .toColourspace('srgb')
      .raw()
      .toBuffer({ resolveWithObject: true });
    if (rgb.info.channels !== 3) throw new Error(`decoded to ${rgb.info.channels} channels`);
    return {
      pixels: new Uint8Array(rgb.data.buffer, rgb.data.byteOffset, rgb.data.length),
      width: rgb.info.width,
      height: rgb.info.height,
    };
  } catch (e) {
    if (e instanceof ImageFault) throw e;
    throw new ImageFault(`cannot decode image (${(e as Error).message})`);
  }
}

/**
 * Decodes to RGB at the smart-resized size, resized with the bicubic kernel of the reference processor
 * (src/model/vision/resize.ts), so the pixels are those transformers gives the model.
 */
export async function decodeImage(src: ImageSource, b: ResizeBounds): Promise<DecodedImage> {
  const original = await imageSize(src);
  const target = smartResize(original, b);
  const rgb = await decodeRgb(src);
  const pixels = resizeBicubic(rgb.pixels, rgb.width, rgb.height, target.width, target.height);
  return { pixels, width: target.width, height: target.height, original };
}
