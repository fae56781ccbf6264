// Everything in the reward that is computed where it runs, without the judge: format, modality,
// answer extraction and validity, the exact-match shortcut, the judge-hacking check, the embedding
// component (ONNX model or its fallback) and the custom modules. It runs inside each Piscina worker
// (or on the calling thread with workers: 0); the embedding model and the custom modules are loaded
// once per instance. The judge stays with the caller, so its cache and concurrency bound are shared.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { customFunctionName, type RewardConfig } from './config.js';
import { EmbedQueue } from './embed-queue.js';
import { OnnxEmbedder, cosine } from './embedding.js';
import { judgeHackReason } from './judge-accuracy.js';
import {
  comparable,
  extractAnswer,
  invalidAnswerReason,
  parseGroundTruth,
  untaggedGroundTruthReason,
} from './normalize.js';
import { formatScore, modalityScore, type FormatTags } from './rules.js';
import { trigramCosine } from './similarity.js';

export type CustomRewardFn = (response: string, groundTruth: string) => number | Promise<number>;

/** Plain data: it crosses the worker boundary by structured clone. */
export interface LocalScore {
  format: number;
  modality: number;
  /** The extracted answer and the reference answer (ground truth without its tag). */
  answer: string;
  reference: string;
  /** Why the answer (or an untagged ground truth) cannot be scored (both accuracy components are then 0), or null. */
  invalid: string | null;
  /** Normalised answer equals the reference, case-sensitive as the reference: accuracy_llm is 1 without a judge call. */
  exact: boolean;
  /** Equal ignoring case, whitespace runs and unicode form: only the no-judge fallback uses it. */
  looseMatch: boolean;
  /** Why the answer is judge hacking (accuracy_llm is then 0, never shown to the judge), or null. */
  hack: string | null;
  accuracy_embed: number;
  /** Cosine similarity behind accuracy_embed; null when the answer was invalid. */
  similarity: number | null;
  /** True when the trigram fallback stood in for an embedding model. */
  embedFallback: boolean;
  custom: Record<string, number>;
}

export interface LocalScorerOptions {
  /** Folder that custom module and embedding paths are relative to (the config's). */
  baseDir?: string;
}

export class CustomRewardError extends Error {
  override name = 'CustomRewardError';
}

export class LocalScorer {
  private constructor(
    private readonly config: RewardConfig,
    private readonly embedder: OnnxEmbedder | null,
    private readonly queue: EmbedQueue | null,
    private readonly custom: { spec: string; name: string; fn: CustomRewardFn }[],
  ) {}

  static async create(config: RewardConfig, options: LocalScorerOptions = {}): Promise<LocalScorer> {
    const base = options.baseDir ?? process.cwd();
    const custom = await Promise.all(config.custom.map((c) => loadFunction(c.function, base)));
    const e = config.embedding;
    const embedder = e
      ? await OnnxEmbedder.load({
          model: resolve(base, e.model),
          tokenizer: resolve(base, e.tokenizer),
          pooling: e.pooling,
          normalize: e.normalize,
          batchSize: e.batch_size,
          maxLength: e.max_length,
          output: e.output,
          threads: e.threads,
        })
      : null;
    return new LocalScorer(config, embedder, embedder ? new EmbedQueue(embedder) : null, custom);
  }

  async score(response: string, groundTruth: string): Promise<LocalScore> {
    const tags: FormatTags = { think: this.config.think_tag, answer: this.config.answer_tag };
    const gt = parseGroundTruth(groundTruth);
    const answer = extractAnswer(response, tags.answer);
    const invalid = untaggedGroundTruthReason(gt) ?? invalidAnswerReason(answer);
    const exact = !invalid && answer === gt.answer;
    let similarity: number | null = null;
    if (!invalid) similarity = exact ? 1 : await this.similarity(answer, gt.answer);
    const custom: Record<string, number> = {};
    for (const c of this.custom) {
      let v: unknown;
      try {
        v = await c.fn(response, groundTruth);
      } catch (e) {
        throw new CustomRewardError(`custom reward '${c.spec}' threw: ${(e as Error).message}`);
      }
      if (typeof v !== 'number' || !Number.isFinite(v))
        throw new CustomRewardError(
          `custom reward '${c.spec}' returned ${typeof v === 'string' ? `the string ${JSON.stringify(v)}` : String(v)}, expected a finite number`,
        );
      custom[c.name] = v;
    }
    return {
      format: formatScore(response, tags),
      modality: modalityScore(response, gt.tag, tags),
      answer,
      reference: gt.answer,
      invalid,
      exact,
      looseMatch: !invalid && comparable(answer) === comparable(gt.answer),
      hack: invalid || exact ? null : judgeHackReason(answer),
      accuracy_embed: similarity !== null && similarity >= this.config.embed_threshold ? 1 : 0,
      similarity,
      embedFallback: this.queue === null,
      custom,
    };
  }

  private async similarity(a: string, b: string): Promise<number> {
    if (!this.queue) return trigramCosine(a, b);
    const [x, y] = await Promise.all([this.queue.embed(a), this.queue.embed(b)]);
    return cosine(x, y);
  }

  async close(): Promise<void> {
    await this.embedder?.close();
  }
}

/** Imports "path/to/module.ts:name" (path relative to baseDir); errors start with `label` and the spec. */
export async function loadFunction(
  spec: string,
  baseDir: string,
  label = 'custom reward',
): Promise<{ spec: string; name: string; fn: CustomRewardFn }> {
  const name = customFunctionName(spec);
  const file = spec.slice(0, spec.length - name.length - 1);
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(resolve(baseDir, file)).href)) as Record<string, unknown>;
  } catch (e) {
    throw new CustomRewardError(`${label} '${spec}': cannot load ${resolve(baseDir, file)} (${(e as Error).message})`);
  }
  if (typeof mod[name] !== 'function')
    throw new CustomRewardError(`${label} '${spec}': ${file} exports no function '${name}'`);
  return { spec, name, fn: mod[name] as CustomRewardFn };
}
