// A Piscina worker of the reward pool: builds its LocalScorer (embedding session, tokenizer, custom
// modules) once, on its first task, and scores one response per task.
import { workerData } from 'piscina';
import { parseRewardConfig } from './config.js';
import { LocalScorer, type LocalScore } from './local-score.js';

/** A response to score, or `init`: load everything now so configuration errors surface at start-up. */
export type RewardTask = { response: string; groundTruth: string } | { init: true };

export interface RewardWorkerData {
  /** The reward config as parsed on the main thread (plain data). */
  config: unknown;
  baseDir?: string;
}

let scorer: Promise<LocalScorer> | null = null;

export default async function scoreTask(task: RewardTask): Promise<LocalScore | null> {
  const data = workerData as RewardWorkerData;
  scorer ??= LocalScorer.create(parseRewardConfig(data.config), { baseDir: data.baseDir });
  const s = await scorer;
  return 'init' in task ? null : s.score(task.response, task.groundTruth);
}
