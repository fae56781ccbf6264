// A one-sequence batch around test/fixtures/hf/images/a.png, processed with a model directory's own
// preprocessor_config.json and placed in a prompt with multimodal positions: how the create-model
// tests run a random Qwen3-VL directory on an image. Also the transformers fixture's own batch.
import path from 'node:path';

import type { PackedBatch } from '../../src/engine/model.js';
import { processImage, readImageProcessorConfig } from '../../src/model/vision/image-processor.js';
import { multimodalPositions } from '../../src/model/vision/rope-index.js';
import { QWEN_VL_TOKENS } from '../../src/model/presets.js';
import { SafetensorsFile } from '../../src/model/safetensors.js';

export const FIXTURE_IMAGE = path.join(import.meta.dirname, '..', 'fixtures', 'hf', 'images', 'a.png');

/** Text, the image's run of <|image_pad|> tokens, text; the second-to-last token targets the last. */
export async function imageBatch(dir: string): Promise<PackedBatch> {
  const proc = readImageProcessorConfig(path.join(dir, 'preprocessor_config.json'));
  const img = await processImage({ path: FIXTURE_IMAGE }, proc, 'a.png');
  const n = (img.grid[0] * img.grid[1] * img.grid[2]) / 4;
  const tokens = Int32Array.from([
    1,
    2,
    QWEN_VL_TOKENS.visionStart,
    ...new Array(n).fill(QWEN_VL_TOKENS.image),
    QWEN_VL_TOKENS.visionEnd,
    3,
    4,
  ]);
  const imageGrids = Int32Array.from(img.grid);
  const positions = multimodalPositions(tokens, imageGrids, { imageTokenId: QWEN_VL_TOKENS.image, merge: 2 });
  const targets = new Int32Array(tokens.length).fill(-1);
  targets[tokens.length - 2] = 4;
  return { tokens, cuSeqlens: Int32Array.from([0, tokens.length]), targets, positions, imageGrids, pixels: img.pixels };
}

/** The packed batch of a fixture directory's reference.safetensors (two sequences, s0 and s1, with images). */
export function referenceBatch(dir: string): PackedBatch {
  const ref = SafetensorsFile.open(path.join(dir, 'reference.safetensors'));
  try {
    const both = (read: (name: string) => Int32Array | Float32Array, name: string) => [
      ...read(`${name}.s0`),
      ...read(`${name}.s1`),
    ];
    return {
      tokens: ref.readInt32('tokens'),
      targets: ref.readInt32('targets'),
      cuSeqlens: ref.readInt32('cu_seqlens'),
      positions: ref.readInt32('positions'),
      imageGrids: Int32Array.from(both((n) => ref.readInt32(n), 'image_grid_thw')),
      pixels: Float32Array.from(both((n) => ref.readFloat32(n), 'pixel_values')),
    };
  } finally {
    ref.close();
  }
}
