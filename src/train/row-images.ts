// The images of training rows as a Qwen3-VL model takes them. Each row's images are preprocessed
// (decoded, smart-resized within data.min_pixels / max_pixels, patchified) on the image pool's worker
// threads, once per row and step: the same pixels then reach the rollouts, the old and reference
// log-probs and the update, and forget() lets them go when the step is over. The chat template
// writes one image placeholder token per image; expandImageTokens widens each to the image's
// merged-patch count, as the Hugging Face processor does before the model sees the prompt.
import type { RlSample } from '../data/index.js';
import type { GeneratedSample } from '../generate/types.js';
import type { ProcessedImage } from '../model/vision/image-processor.js';
import type { ImagePool } from '../model/vision/image-pool.js';
import type { RopeIndexOptions } from '../model/vision/rope-index.js';

export class RowImages {
  private readonly cache = new Map<RlSample, Promise<ProcessedImage[]>>();

  constructor(private readonly pool: ImagePool) {}

  /** The row's images, preprocessed off this thread; a fault names the row and the image. */
  of(row: RlSample): Promise<ProcessedImage[]> {
    let images = this.cache.get(row);
    if (!images) {
      images = Promise.all(row.images.map((src, i) => this.pool.process(src, `${row.id}: image ${i + 1}`)));
      this.cache.set(row, images);
    }
    return images;
  }

  /** Drops the pixels kept since the last call (end of a step, of a validation, of the warm-up). */
  forget(): void {
    this.cache.clear();
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** Each image placeholder token of `ids` widened to its image's t*h*w/merge^2 tokens, images taken in order. */
export function expandImageTokens(ids: readonly number[], images: readonly ProcessedImage[], o: RopeIndexOptions): number[] {
  const placeholders = ids.filter((id) => id === o.imageTokenId).length;
  if (placeholders !== images.length)
    throw new Error(`the prompt has ${placeholders} image placeholder token(s) but ${images.length} image(s)`);
  let image = 0;
  return ids.flatMap((id) => {
    if (id !== o.imageTokenId) return [id];
    const [t, h, w] = images[image++].grid;
    return new Array<number>((t * h * w) / (o.merge * o.merge)).fill(id);
  });
}

/**
 * A rollout sample that stopped on an image placeholder token (the trainer makes it a stop token: a
 * response cannot carry an image) without that token, so the sample's tokens can be scored again
 * beside the prompt's images.
 */
export function withoutImageToken(sample: GeneratedSample, imageTokenId: number): GeneratedSample {
  if (sample.tokenIds[sample.tokenIds.length - 1] !== imageTokenId) return sample;
  return { ...sample, tokenIds: sample.tokenIds.slice(0, -1), logprobs: sample.logprobs.slice(0, -1) };
}
