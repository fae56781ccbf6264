// The image preprocessing pool (Piscina): images are submitted as their rows come up and their patch
// rows come back as promises, computed on worker threads while the calling thread keeps generating.
// A bad image rejects with an ImageFault naming it; the pool itself carries on.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';

import { ImageFault, type ImageSource } from '../../data/images.js';
import type { ImageProcessorConfig, ProcessedImage } from './image-processor.js';
import type { ImageTask, ImageTaskResult } from './image-worker.js';

/** The worker module next to this one: image-worker.js when built, image-worker.ts when run by tsx. */
function workerFile(): string {
  const js = fileURLToPath(new URL('./image-worker.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('./image-worker.ts', import.meta.url));
}

/** Worker threads a server or evaluation gives image preprocessing: it overlaps generation without taking its cores. */
export const DEFAULT_IMAGE_THREADS = 2;

export class ImagePool {
  private readonly piscina: Piscina;

  constructor(
    private readonly config: ImageProcessorConfig,
    threads: number,
  ) {
    this.piscina = new Piscina({
      filename: workerFile(),
      minThreads: threads,
      maxThreads: threads,
      maxQueue: Infinity,
    });
  }

  async process(source: ImageSource, label: string): Promise<ProcessedImage> {
    const r = (await this.piscina.run({ source, config: this.config, label } satisfies ImageTask)) as ImageTaskResult;
    if ('fault' in r) throw new ImageFault(r.fault);
    return r.ok;
  }

  close(): Promise<void> {
    return this.piscina.destroy();
  }
}
