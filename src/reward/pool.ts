// The reward's worker pool (Piscina): responses are submitted one at a time as generation finishes
// them and their local components come back as promises, while the calling thread (which drives
// generation) stays free. Each worker loads the embedding model and custom modules once, and runs
// several tasks at a time so that their texts share ONNX batches.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import type { RewardConfig } from './config.js';
import type { LocalScore } from './local-score.js';
import type { RewardFunctionInput, RewardFunctionScore } from './reward-function.js';
import type { RewardTask, RewardWorkerData } from './worker.js';

/** The worker module next to this one: worker.js when built, worker.ts when run from source by tsx. */
function workerFile(): string {
  const js = fileURLToPath(new URL('./worker.js', import.meta.url));
  return existsSync(js) ? js : fileURLToPath(new URL('./worker.ts', import.meta.url));
}

export class RewardPool {
  private readonly piscina: Piscina;

  /** Starts the pool and loads one worker's scorer, so a bad model path or custom module fails here. */
  static async start(config: RewardConfig, workers: number, baseDir?: string): Promise<RewardPool> {
    const pool = new RewardPool(config, workers, baseDir);
    try {
      await pool.piscina.run({ init: true } satisfies RewardTask);
    } catch (e) {
      await pool.close();
      throw e;
    }
    return pool;
  }

  private constructor(config: RewardConfig, workers: number, baseDir?: string) {
    const workerData: RewardWorkerData = { config, baseDir };
    this.piscina = new Piscina({
      filename: workerFile(),
      workerData,
      minThreads: workers,
      maxThreads: workers,
      // Tasks await ONNX runs; more than one per worker lets their texts be batched together, and
      // 'async' atomics keep an idle worker's event loop turning while those runs complete.
      concurrentTasksPerWorker: config.embedding ? config.embedding.batch_size : 16,
      atomics: 'async',
      // A task queue without bound: the caller (the trainer's generation) decides how much to submit.
      maxQueue: Infinity,
    });
  }

  score(response: string, groundTruth: string): Promise<LocalScore> {
    return this.piscina.run({ response, groundTruth } satisfies RewardTask) as Promise<LocalScore>;
  }

  /** worker.reward.reward_function on one group's responses, in a worker. */
  runRewardFunction(inputs: RewardFunctionInput[]): Promise<RewardFunctionScore[]> {
    return this.piscina.run({ rewardFunction: inputs } satisfies RewardTask) as Promise<RewardFunctionScore[]>;
  }

  get threads(): number {
    return this.piscina.threads.length;
  }

  close(): Promise<void> {
    return this.piscina.destroy();
  }
}
