// A Piscina worker of the image pool: decodes, resizes and patchifies one image per task, so that this
// CPU work stays off the thread that drives generation and training.
import type { ImageSource } from '../../data/images.js';
import { processImage, type ImageProcessorConfig, type ProcessedImage } from './image-processor.js';

export interface ImageTask {
  source: ImageSource;
  config: ImageProcessorConfig;
  /** Names the image in a fault (file, row). */
  label: string;
}

export type ImageTaskResult = { ok: ProcessedImage } | { fault: string };

export default async function imageTask(task: ImageTask): Promise<ImageTaskResult> {
  try {
    return { ok: await processImage(task.source, task.config, task.label) };
  } catch (e) {
    if ((e as Error).name === 'ImageFault') return { fault: (e as Error).message };
    throw e;
  }
}
