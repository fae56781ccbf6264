// What a loaded model directory needs to take images: a vision tower, and the image processor
// settings of its preprocessor_config.json. Generate, serve and eval ask here, so a text-only
// model is refused the same way everywhere, naming its directory.
import { join } from 'node:path';

import type { Model } from '../../engine/model.js';
import { readImageProcessorConfig, type ImageProcessorConfig } from './image-processor.js';

export class TextOnlyModelError extends Error {
  override name = 'TextOnlyModelError';
}

/** The image processor of the Qwen3-VL model in `dir`; throws TextOnlyModelError for a model without a vision tower. */
export function modelImageProcessor(dir: string, model: Model): ImageProcessorConfig {
  if (!model.config.vision || model.config.imageTokenId === undefined)
    throw new TextOnlyModelError(`the model in ${dir} is a text-only model (no vision tower): it cannot take images`);
  return readImageProcessorConfig(join(dir, 'preprocessor_config.json'));
}
