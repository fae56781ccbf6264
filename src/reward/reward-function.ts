// worker.reward.reward_function, EasyR1's reward hook: "path/to/module.ts:name" (a JS or TS module;
// path relative to the config), called with worker.reward.reward_function_kwargs as its second
// argument, in one of EasyR1's two forms (worker.reward.reward_type):
// - sequential: fn({ response, response_length, ground_truth }, kwargs) -> score, once per response;
// - batch: fn([{ response, response_length, ground_truth }, ...], kwargs) -> [score, ...], once per
//   group (all the responses to one prompt), so a function can compare them.
// A score is { overall, ...components } (numbers) or a bare number (the overall). It runs where the
// built-in local components run: in the reward's Piscina workers (or on the calling thread with
// workers: 0). The composite reward combines it (reward_function_mode: replace | add).
import type { RewardConfig } from './config.js';
import { CustomRewardError, loadFunction } from './local-score.js';

/** EasyR1's RewardInput. */
export interface RewardFunctionInput {
  response: string;
  /** Tokens in the response. */
  response_length: number;
  ground_truth: string;
}

/** Always holds 'overall'; the other keys are the function's own components. */
export type RewardFunctionScore = Record<string, number>;

type AnyFn = (input: unknown, kwargs: Record<string, unknown>) => unknown;

const KEY = 'worker.reward.reward_function';

function checkScore(v: unknown, spec: string, which: string): RewardFunctionScore {
  const score = typeof v === 'number' ? { overall: v } : v;
  if (typeof score !== 'object' || score === null || Array.isArray(score))
    throw new CustomRewardError(
      `${KEY} '${spec}' returned ${JSON.stringify(v)} for ${which}, expected {overall, ...} or a number`,
    );
  for (const [k, x] of Object.entries(score))
    if (typeof x !== 'number' || !Number.isFinite(x))
      throw new CustomRewardError(`${KEY} '${spec}': '${k}' of ${which} is ${String(x)}, expected a finite number`);
  if (!('overall' in score)) throw new CustomRewardError(`${KEY} '${spec}': the score of ${which} has no 'overall'`);
  return score as RewardFunctionScore;
}

export class RewardFunction {
  private constructor(
    private readonly spec: string,
    private readonly fn: AnyFn,
    private readonly kwargs: Record<string, unknown>,
    private readonly type: 'batch' | 'sequential',
  ) {}

  static async load(config: RewardConfig, baseDir: string): Promise<RewardFunction | null> {
    const spec = config.reward_function;
    if (spec === undefined) return null;
    const { fn } = await loadFunction(spec, baseDir, KEY);
    return new RewardFunction(spec, fn as unknown as AnyFn, config.reward_function_kwargs, config.reward_type);
  }

  async run(inputs: RewardFunctionInput[]): Promise<RewardFunctionScore[]> {
    const call = async (arg: unknown) => {
      try {
        return await this.fn(arg, this.kwargs);
      } catch (e) {
        throw new CustomRewardError(`${KEY} '${this.spec}' threw: ${(e as Error).message}`);
      }
    };
    if (this.type === 'sequential')
      return Promise.all(inputs.map(async (x, i) => checkScore(await call(x), this.spec, `response ${i + 1}`)));
    const out = await call(inputs);
    if (!Array.isArray(out) || out.length !== inputs.length)
      throw new CustomRewardError(
        `${KEY} '${this.spec}' (reward_type batch) returned ${Array.isArray(out) ? `${out.length} scores` : typeof out} for ${inputs.length} responses; expected one score per response`,
      );
    return out.map((v, i) => checkScore(v, this.spec, `response ${i + 1}`));
  }
}
