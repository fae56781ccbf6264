// Qwen3-VL's image processor after decoding (src/data/images.ts decodes and smart-resizes): rescale
// and normalise each RGB value as preprocessor_config.json says, then cut the image into
// patch x patch squares, each repeated temporal_patch_size times (a still image is one frame), written
// as rows of C*T*P*P values (channel, frame, row, column) in merge-block order: block row, block
// column, row in block, column in block. The grid (t, h, w) counts patches.
import { readFileSync } from 'node:fs';

import { decodeImage, ImageFault, type ImageSource } from '../../data/images.js';

export interface ImageProcessorConfig {
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
  minPixels: number;
  maxPixels: number;
  /** Per channel (R, G, B); rescaleFactor is applied first (usually 1/255). */
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  rescaleFactor: number;
}

export interface ProcessedImage {
  /** [t*h*w, 3*temporalPatchSize*patchSize^2] rows, merge-block order. */
  pixels: Float32Array;
  /** (t, h, w) in patches. */
  grid: [number, number, number];
}

/** preprocessor_config.json of a Qwen2-VL / Qwen3-VL model; names the field that is wrong. */
export function readImageProcessorConfig(file: string): ImageProcessorConfig {
  let j: Record<string, unknown>;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ImageFault(`${file}: cannot read the image processor config (${(e as Error).message})`);
  }
  const num = (v: unknown, key: string): number => {
    if (typeof v !== 'number' || !(v > 0))
      throw new ImageFault(`${file}: ${key} must be a positive number, got ${JSON.stringify(v)}`);
    return v;
  };
  const triple = (v: unknown, key: string): [number, number, number] => {
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number'))
      throw new ImageFault(`${file}: ${key} must be 3 numbers, got ${JSON.stringify(v)}`);
    return v as [number, number, number];
  };
  const size = (j.size ?? {}) as Record<string, unknown>;
  for (const flag of ['do_resize', 'do_rescale', 'do_normalize', 'do_convert_rgb'])
    if (j[flag] === false) throw new ImageFault(`${file}: ${flag} = false is not supported`);
  const std = triple(j.image_std, 'image_std');
  if (!std.every((s) => s > 0)) throw new ImageFault(`${file}: image_std must be positive`);
  return {
    patchSize: num(j.patch_size, 'patch_size'),
    temporalPatchSize: num(j.temporal_patch_size, 'temporal_patch_size'),
    mergeSize: num(j.merge_size, 'merge_size'),
    minPixels: num(size.shortest_edge ?? j.min_pixels, 'size.shortest_edge'),
    maxPixels: num(size.longest_edge ?? j.max_pixels, 'size.longest_edge'),
    imageMean: triple(j.image_mean, 'image_mean'),
    imageStd: std,
    rescaleFactor: num(j.rescale_factor ?? 1 / 255, 'rescale_factor'),
  };
}

/** Patch rows of a decoded RGB image whose sides are multiples of patchSize * mergeSize. */
export function patchify(rgb: Uint8Array, width: number, height: number, c: ImageProcessorConfig): ProcessedImage {
  const P = c.patchSize,
    M = c.mergeSize,
    T = c.temporalPatchSize;
  if (width % (P * M) || height % (P * M))
    throw new ImageFault(`image ${width}x${height} is not a multiple of ${P * M} on each side`);
  const gh = height / P,
    gw = width / P;
  const rowLen = 3 * T * P * P;
  const pixels = new Float32Array(gh * gw * rowLen);
  // value = (byte * rescale - mean) / std, computed in float64 and rounded once to float32.
  const lut = [0, 1, 2].map((ch) =>
    Float64Array.from({ length: 256 }, (_, v) => (v * c.rescaleFactor - c.imageMean[ch]) / c.imageStd[ch]),
  );
  let row = 0;
  for (let br = 0; br < gh / M; br++)
    for (let bc = 0; bc < gw / M; bc++)
      for (let ir = 0; ir < M; ir++)
        for (let ic = 0; ic < M; ic++, row++) {
          const y0 = (br * M + ir) * P,
            x0 = (bc * M + ic) * P;
          let at = row * rowLen;
          for (let ch = 0; ch < 3; ch++)
            for (let f = 0; f < T; f++)
              for (let y = 0; y < P; y++)
                for (let x = 0; x < P; x++) pixels[at++] = lut[ch][rgb[((y0 + y) * width + x0 + x) * 3 + ch]];
        }
  return { pixels, grid: [1, gh, gw] };
}

/** Decodes, smart-resizes (bicubic) and patchifies one image; a fault names `label` (the file or row). */
export async function processImage(src: ImageSource, c: ImageProcessorConfig, label: string): Promise<ProcessedImage> {
  try {
    const d = await decodeImage(src, {
      factor: c.patchSize * c.mergeSize,
      minPixels: c.minPixels,
      maxPixels: c.maxPixels,
    });
    return patchify(d.pixels, d.width, d.height, c);
  } catch (e) {
    if (e instanceof ImageFault) throw new ImageFault(`${label}: ${e.message}`);
    throw e;
  }
}

/** Several images as one model input, in order: their (t, h, w) triples and their pixel rows back to back. */
export function stackImages(images: readonly ProcessedImage[]): { grids: Int32Array; pixels: Float32Array } {
  const pixels = new Float32Array(images.reduce((n, im) => n + im.pixels.length, 0));
  let at = 0;
  for (const im of images) {
    pixels.set(im.pixels, at);
    at += im.pixels.length;
  }
  return { grids: Int32Array.from(images.flatMap((im) => im.grid)), pixels };
}

/** Tokens an image takes in the language model: one per merge x merge block of patches in each frame. */
export function visualTokenCount(im: ProcessedImage, merge: number): number {
  return (im.grid[0] * im.grid[1] * im.grid[2]) / (merge * merge);
}
