// The images of training rows as a Qwen3-VL model takes them. Each row's images are preprocessed
// (decoded, smart-resized within data.min_pixels / max_pixels, patchified) on the image pool's worker
// threads, once per row and step: the same pixels then reach the rollouts, the old and reference
// log-probs and the update, and forget() lets them go when the step is over. A row's prompt ids come
// with each image's pads already widened to the count its header size gives (PromptFormatter, so
// that prompt lengths are exact when rows are filtered); checkImageTokens holds them to the pixels.
import { ImageFault, type RlSample } from '../data/index.js';
import type { GeneratedSample } from '../generate/types.js';
import { type ProcessedImage, visualTokenCount } from '../model/vision/image-processor.js';
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

  /**
   * Why the row's images cannot be preprocessed (the fault of the first bad one, naming the row and the
   * image: a corrupt file whose header was read when the data loaded), or null when they all can.
   */
  async fault(row: RlSample): Promise<string | null> {
    try {
      await this.of(row);
      return null;
    } catch (e) {
      if (e instanceof ImageFault) return e.message;
      throw e;
    }
  }

  /** Drops the pixels kept since the last call (end of a step, of a validation, of the warm-up). */
  forget(): void {
    this.cache.clear();
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/**
 * Throws unless the runs of image tokens in `ids` are, in order, exactly the merged-patch counts of
 * `images` as preprocessed (a header that disagrees with the decoded image, say, would otherwise give
 * the model pixels for other positions). `what` names the row.
 */
export function checkImageTokens(
  ids: readonly number[],
  images: readonly ProcessedImage[],
  o: RopeIndexOptions,
  what: string,
): void {
  const runs: number[] = [];
  ids.forEach((id, i) => {
    if (id !== o.imageTokenId) return;
    if (i > 0 && ids[i - 1] === o.imageTokenId) runs[runs.length - 1]++;
    else runs.push(1);
  });
  const want = images.map((im) => visualTokenCount(im, o.merge));
  if (runs.length !== want.length || runs.some((n, k) => n !== want[k]))
    throw new Error(
      `${what}: the prompt holds image token runs [${runs.join(', ')}] but the preprocessed images take [${want.join(', ')}]`,
    );
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
