// The composite MediX-R1 reward: overall = wf·format + (1 − wf)·(wl·llm + we·embed + wm·modality),
// every component returned. A judge that fails never scores 0: the component is marked unavailable
// and, by policy, the content weights are renormalised over the components that were computed, or
// the sample is dropped from the update. A judge silent for longer than max_outage_s is fatal.
import { pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import type { RewardConfig } from './config.js';
import { AccuracyJudge, JudgeUnavailableError, judgeHackReason } from './judge-accuracy.js';
import { comparable, extractAnswer, invalidAnswerReason, parseGroundTruth } from './normalize.js';
import { formatScore, modalityScore, type FormatTags } from './rules.js';
import { trigramCosine } from './similarity.js';

export type CustomRewardFn = (response: string, groundTruth: string) => number | Promise<number>;

export interface RewardResult {
  /** null when the sample is dropped (a component was unavailable and on_unavailable is 'drop'). */
  overall: number | null;
  format: number;
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

export class JudgeOutageError extends Error {
  override name = 'JudgeOutageError';
}

export class CompositeReward {
  readonly judge: AccuracyJudge | null;
  private readonly tags: FormatTags;
  private readonly warned = new Set<string>();
  private custom: { name: string; weight: number; fn: CustomRewardFn }[] = [];
  readonly stats: RewardStats = { scored: 0, dropped: 0, judgeUnavailable: 0, judgeCalls: 0, judgeCacheHits: 0, exactMatches: 0 };

  private constructor(
    readonly config: RewardConfig,
    private readonly warn: (message: string) => void,
  ) {
    this.tags = { think: config.think_tag, answer: config.answer_tag };
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

  /** Builds the reward; custom modules are resolved relative to `baseDir` (the config's folder). */
  static async create(config: RewardConfig, options: { baseDir?: string; warn?: (m: string) => void } = {}): Promise<CompositeReward> {
    const r = new CompositeReward(config, options.warn ?? ((m) => console.warn(m)));
    for (const c of config.custom) {
      const at = c.function.lastIndexOf(':');
      const [file, name] = [c.function.slice(0, at), c.function.slice(at + 1)];
      const mod = (await import(pathToFileURL(resolve(options.baseDir ?? process.cwd(), file)).href)) as Record<string, unknown>;
      if (typeof mod[name] !== 'function') throw new Error(`custom reward '${c.function}': ${file} exports no function '${name}'`);
      r.custom.push({ name, weight: c.weight, fn: mod[name] as CustomRewardFn });
    }
    return r;
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

  private async llmAccuracy(answer: string, reference: string, reasons: Record<string, string>): Promise<number | null> {
    if (comparable(answer) === comparable(reference)) {
      this.stats.exactMatches++;
      return 1;
    }
    const hack = judgeHackReason(answer);
    if (hack) {
      reasons.accuracy_llm = hack;
      return 0;
    }
    if (!this.judge) {
      this.warnOnce('judge', 'medix reward: no judge configured; accuracy_llm falls back to exact match of normalised text');
      reasons.accuracy_llm = 'fallback: normalised exact match (no judge configured)';
      return 0;
    }
    try {
      return await this.judge.verdict(answer, reference);
    } catch (e) {
      if (!(e instanceof JudgeUnavailableError)) throw e;
      this.stats.judgeUnavailable++;
      reasons.accuracy_llm = `unavailable: ${e.message}`;
      this.checkOutage();
      return null;
    }
  }

  private embedAccuracy(answer: string, reference: string, reasons: Record<string, string>): number {
    this.warnOnce('embed', 'medix reward: no embedding model configured; accuracy_embed falls back to character-trigram cosine');
    const sim = trigramCosine(answer, reference);
    reasons.accuracy_embed = `fallback: trigram cosine ${sim.toFixed(3)}`;
    return sim >= this.config.embed_threshold ? 1 : 0;
  }

  async score(response: string, groundTruth: string): Promise<RewardResult> {
    const c = this.config;
    const gt = parseGroundTruth(groundTruth);
    const answer = extractAnswer(response);
    const reasons: Record<string, string> = {};
    const format = formatScore(response, this.tags);
    const modality = modalityScore(response, gt.tag, this.tags);
    let llm: number | null = 0;
    let embed: number | null = 0;
    const invalid = invalidAnswerReason(answer);
    if (invalid) reasons.accuracy_llm = reasons.accuracy_embed = invalid;
    else {
      llm = await this.llmAccuracy(answer, gt.answer, reasons);
      embed = this.embedAccuracy(answer, gt.answer, reasons);
    }
    const custom: Record<string, number> = {};
    for (const f of this.custom) custom[f.name] = Number(await f.fn(response, groundTruth));

    const parts: [number | null, number, string][] = [
      [llm, c.accuracy_llm_weight, 'accuracy_llm'],
      [embed, c.accuracy_embed_weight, 'accuracy_embed'],
      [modality, c.modality_weight, 'modality'],
    ];
    const unavailable = parts.filter(([v]) => v === null).map(([, , n]) => n);
    let overall: number | null = null;
    if (unavailable.length === 0 || c.on_unavailable === 'renormalize') {
      const avail = parts.filter(([v]) => v !== null) as [number, number, string][];
      const wsum = avail.reduce((s, [, w]) => s + w, 0);
      const content = wsum > 0 ? avail.reduce((s, [v, w]) => s + v * w, 0) / wsum : 0;
      const builtin = c.format_weight * format + (1 - c.format_weight) * content;
      const customW = this.custom.reduce((s, f) => s + f.weight, 0);
      overall = (builtin + this.custom.reduce((s, f) => s + f.weight * custom[f.name], 0)) / (1 + customW);
    }
    this.stats.scored++;
    if (overall === null) this.stats.dropped++;
    if (this.judge) {
      this.stats.judgeCalls = this.judge.calls;
      this.stats.judgeCacheHits = this.judge.cacheHits;
    }
    return { overall, format, accuracy_llm: llm, accuracy_embed: embed, modality, custom, reasons, unavailable };
  }
}
