// A Piscina worker of the reward pool: builds its LocalScorer (embedding session, tokenizer, custom
// modules) and worker.reward.reward_function once, on its first task, and scores one response per
// task, or runs reward_function on a group's responses.
import { workerData } from 'piscina';
import { parseRewardConfig } from './config.js';
import { LocalScorer, type LocalScore } from './local-score.js';
import { RewardFunction, type RewardFunctionInput, type RewardFunctionScore } from './reward-function.js';

/** A response to score, a group for reward_function, or `init`: load everything now so configuration errors surface at start-up. */
export type RewardTask =
  | { response: string; groundTruth: string }
  | { rewardFunction: RewardFunctionInput[] }
  | { init: true };

export interface RewardWorkerData {
  /** The reward config as parsed on the main thread (plain data). */
  config: unknown;
  baseDir?: string;
}

let scorer: Promise<LocalScorer> | null = null;
let rewardFunction: Promise<RewardFunction | null> | null = null;

export default async function scoreTask(task: RewardTask): Promise<LocalScore | RewardFunctionScore[] | null> {
  const data = workerData as RewardWorkerData;
  const config = parseRewardConfig(data.config);
  scorer ??= LocalScorer.create(config, { baseDir: data.baseDir });
  rewardFunction ??= RewardFunction.load(config, data.baseDir ?? process.cwd());
  const [s, f] = await Promise.all([scorer, rewardFunction]);
  if ('init' in task) return null;
  if ('rewardFunction' in task) return f!.run(task.rewardFunction);
  return s.score(task.response, task.groundTruth);
}
