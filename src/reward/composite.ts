// The composite MediX-R1 reward: overall = wf·format + (1 − wf)·(wl·llm + we·embed + wm·modality),
// every component returned. The local components (rules, embedding, custom modules) come from the
// worker pool (or the calling thread with workers: 0); the judge is asked from here, so one cache
// and one concurrency bound serve every worker. A judge that fails never scores 0: the component is
// marked unavailable and, by policy, the content weights are renormalised over the components that
// were computed, or the sample is dropped from the update. A judge failing for longer than
// max_outage_s is fatal.
import { customFunctionName, type RewardConfig } from './config.js';
import { AccuracyJudge, JudgeUnavailableError } from './judge-accuracy.js';
import { LocalScorer, type LocalScore } from './local-score.js';
import { RewardPool } from './pool.js';
import { RewardFunction, type RewardFunctionInput, type RewardFunctionScore } from './reward-function.js';

export type { CustomRewardFn } from './local-score.js';

export interface RewardResult {
  /** null when the sample is dropped (a component was unavailable and on_unavailable is 'drop'). */
  overall: number | null;
  format: number;
  /** null when the judge was unavailable. */
  accuracy_llm: number | null;
  accuracy_embed: number | null;
  modality: number;
  /** Custom components by function name. */
  custom: Record<string, number>;
  /** Why a component scored what it did, where that is not obvious (invalid answer, judge hacking, fallback). */
  reasons: Record<string, string>;
  /** Components that could not be computed. */
  unavailable: string[];
}

export interface RewardStats {
  scored: number;
  dropped: number;
  judgeUnavailable: number;
  judgeCalls: number;
  judgeCacheHits: number;
  exactMatches: number;
}

export interface CompositeRewardOptions {
  /** Folder that custom module and embedding paths are relative to (the config's). */
  baseDir?: string;
  warn?: (message: string) => void;
}

export class JudgeOutageError extends Error {
  override name = 'JudgeOutageError';
}

/** Where the local components are computed: a worker pool or the calling thread. */
interface LocalBackend {
  score(response: string, groundTruth: string): Promise<LocalScore>;
  close(): Promise<void>;
}

/** worker.reward.reward_function where it runs (the pool, or this thread), or null when not configured. */
type RunRewardFunction = ((inputs: RewardFunctionInput[]) => Promise<RewardFunctionScore[]>) | null;

/** One response of a group, for scoreGroup. */
export interface GroupResponse {
  response: string;
  /** Its length in tokens (reward_function's response_length). */
  responseLength: number;
}

export class CompositeReward {
  readonly judge: AccuracyJudge | null;
  private readonly warned = new Set<string>();
  readonly stats: RewardStats = {
    scored: 0,
    dropped: 0,
    judgeUnavailable: 0,
    judgeCalls: 0,
    judgeCacheHits: 0,
    exactMatches: 0,
  };

  private constructor(
    readonly config: RewardConfig,
    private readonly local: LocalBackend,
    private readonly warn: (message: string) => void,
    private readonly rewardFunction: RunRewardFunction = null,
  ) {
    const j = config.judge;
    this.judge = j
      ? new AccuracyJudge({
          baseUrl: j.base_url,
          model: j.model,
          apiKey: process.env[j.api_key_env],
          concurrency: j.concurrency,
          timeoutMs: j.timeout_s * 1000,
          maxAttempts: j.max_attempts,
          maxPredictionChars: j.max_prediction_chars,
          cacheFile: j.cache_file,
        })
      : null;
  }

  /**
   * Builds the reward. With `workers` > 0 (the default) the local components run in a Piscina pool
   * and close() must be called when done; with 0 the embedding model and custom modules load here.
   */
  static async create(config: RewardConfig, options: CompositeRewardOptions = {}): Promise<CompositeReward> {
    const warn = options.warn ?? ((m: string) => console.warn(m));
    if (config.workers > 0) {
      const pool = await RewardPool.start(config, config.workers, options.baseDir);
      return new CompositeReward(
        config,
        pool,
        warn,
        config.reward_function ? (inputs) => pool.runRewardFunction(inputs) : null,
      );
    }
    const local = await LocalScorer.create(config, options);
    const fn = await RewardFunction.load(config, options.baseDir ?? process.cwd()).catch(async (e: unknown) => {
      await local.close();
      throw e;
    });
    return new CompositeReward(config, local, warn, fn ? (inputs) => fn.run(inputs) : null);
  }

  private warnOnce(key: string, message: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.warn(message);
  }

  /** Throws JudgeOutageError when every judge request has failed for longer than max_outage_s. */
  checkOutage(now = Date.now()): void {
    const j = this.config.judge;
    if (!this.judge || !j) return;
    const a = this.judge.client.availability();
    if (a.failingSince === null) return;
    const failing = (now - a.failingSince) / 1000;
    if (failing > j.max_outage_s)
      throw new JudgeOutageError(
        `the judge at ${j.base_url} has failed every request for ${failing.toFixed(0)} s (max_outage_s = ${j.max_outage_s}; last error: ${a.lastError}); stopping`,
      );
  }

  private async llmAccuracy(local: LocalScore, reasons: Record<string, string>): Promise<number | null> {
    if (local.exact) {
      this.stats.exactMatches++;
      return 1;
    }
    if (local.hack) {
      reasons.accuracy_llm = local.hack;
      return 0;
    }
    if (!this.judge) {
      this.warnOnce('judge', 'medix reward: no judge configured; accuracy_llm falls back to a case-insensitive match');
      reasons.accuracy_llm = 'fallback: case-insensitive match (no judge configured)';
      return local.looseMatch ? 1 : 0;
    }
    try {
      return await this.judge.verdict(local.answer, local.reference);
    } catch (e) {
      if (!(e instanceof JudgeUnavailableError)) throw e;
      this.stats.judgeUnavailable++;
      reasons.accuracy_llm = `unavailable: ${e.message}`;
      this.checkOutage();
      return null;
    } finally {
      this.stats.judgeCalls = this.judge.calls;
      this.stats.judgeCacheHits = this.judge.cacheHits;
    }
  }

  /** Scores one response; many calls may be in flight at once (submit each as it finishes generating). */
  async score(response: string, groundTruth: string): Promise<RewardResult> {
    const c = this.config;
    const local = await this.local.score(response, groundTruth);
    const reasons: Record<string, string> = {};
    let llm: number | null = 0;
    if (local.invalid) reasons.accuracy_llm = reasons.accuracy_embed = local.invalid;
    else {
      llm = await this.llmAccuracy(local, reasons);
      if (local.embedFallback && !local.exact) {
        this.warnOnce(
          'embed',
          'medix reward: no embedding model configured; accuracy_embed falls back to character-trigram cosine',
        );
        reasons.accuracy_embed = `fallback: trigram cosine ${local.similarity!.toFixed(3)}`;
      }
    }

    const parts: [number | null, number, string][] = [
      [llm, c.accuracy_llm_weight, 'accuracy_llm'],
      [local.accuracy_embed, c.accuracy_embed_weight, 'accuracy_embed'],
      [local.modality, c.modality_weight, 'modality'],
    ];
    const unavailable = parts.filter(([v]) => v === null).map(([, , n]) => n);
    let overall: number | null = null;
    if (unavailable.length === 0 || c.on_unavailable === 'renormalize') {
      const avail = parts.filter(([v]) => v !== null) as [number, number, string][];
      const wsum = avail.reduce((s, [, w]) => s + w, 0);
      const content = wsum > 0 ? avail.reduce((s, [v, w]) => s + v * w, 0) / wsum : 0;
      const builtin = c.format_weight * local.format + (1 - c.format_weight) * content;
      const customW = c.custom.reduce((s, f) => s + f.weight, 0);
      const customSum = c.custom.reduce((s, f) => s + f.weight * local.custom[customFunctionName(f.function)], 0);
      overall = (builtin + customSum) / (1 + customW);
    }
    this.stats.scored++;
    if (overall === null) this.stats.dropped++;
    return {
      overall,
      format: local.format,
      accuracy_llm: llm,
      accuracy_embed: local.accuracy_embed,
      modality: local.modality,
      custom: local.custom,
      reasons,
      unavailable,
    };
  }

  /**
   * Scores the responses to one prompt. Without worker.reward.reward_function this is score() on
   * each; with it, the function also runs (once for the group in its batch form) and its overall
   * replaces the composite's or is added to it (reward_function_mode); its score is kept under
   * custom.reward_function, its other keys as custom['reward_function/KEY'].
   */
  async scoreGroup(responses: GroupResponse[], groundTruth: string): Promise<RewardResult[]> {
    const builtin = Promise.all(responses.map((r) => this.score(r.response, groundTruth)));
    if (!this.rewardFunction) return builtin;
    const inputs = responses.map((r) => ({
      response: r.response,
      response_length: r.responseLength,
      ground_truth: groundTruth,
    }));
    const [base, scores] = await Promise.all([builtin, this.rewardFunction(inputs)]);
    return base.map((r, i) => {
      const { overall, ...parts } = scores[i];
      const custom = {
        ...r.custom,
        reward_function: overall,
        ...Object.fromEntries(Object.entries(parts).map(([k, v]) => [`reward_function/${k}`, v])),
      };
      const total =
        this.config.reward_function_mode === 'replace' ? overall : r.overall === null ? null : r.overall + overall;
      return { ...r, overall: total, custom };
    });
  }

  /** The judge-free components of one response (format, embedding similarity, modality), as the workers score them. */
  localScore(response: string, groundTruth: string): Promise<LocalScore> {
    return this.local.score(response, groundTruth);
  }

  /** Stops the worker pool (or releases the embedding session) and writes pending cache entries. */
  async close(): Promise<void> {
    await this.local.close();
    await this.judge?.cache.flush();
  }
}
