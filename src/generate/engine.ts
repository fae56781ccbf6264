// The generation engine: continuous batching over the native KV cache (native-generator.ts).
//
// Requests wait in a queue; between two decode steps the engine admits as many as the batch and
// the cache allow, and the next step prefills their prompts while decoding everyone else's next
// token. A request's n samples share one prefill: the first sample keeps the prompt's sequence and
// the others fork it (sharing its cache blocks). Every step runs off the JS thread; this file only
// does bookkeeping between steps (stops, streaming, abort, resolving promises).
//
// A Qwen3-VL request's images run through the vision tower in its prefill step, their outputs taking
// the places of the prompt's image tokens, which get get_rope_index's (t, h, w) positions; every
// later token of its samples is numbered from one past the prompt's largest position, as
// transformers' rope delta does.
//
// Admission reserves each request's worst-case cache blocks up front (prompt once, plus every
// sample's own blocks up to maxNewTokens), so a running request never runs out of cache and nothing
// needs to be preempted; a request that could never fit is rejected with the numbers.
import { computeDtype } from '../engine/bf16.js';
import type { Model } from '../engine/model.js';
import { stackImages, type ProcessedImage } from '../model/vision/image-processor.js';
import { multimodalPositions, type RopeIndexOptions } from '../model/vision/rope-index.js';
import { IncrementalDetokenizer } from '../tokenizer/stream.js';
import type { TextTokenizer } from '../tokenizer/types.js';
import { createNativeGenerator } from './native-generator.js';
import type { GeneratorStats, GeneratorStep, NativeGenerator, NativeSamplerParams } from './native-generator.js';
import type {
  FinishReason,
  GeneratedSample,
  GenerationEngine,
  GenerationRequest,
  GenerationResult,
  SamplingParams,
} from './types.js';

export interface EngineOptions {
  /** Gives text, streaming deltas and stop strings; without it text is '' and stop strings are refused. */
  tokenizer?: TextTokenizer;
  /** Ids that end a sample (default: the tokenizer's eosTokenIds, else none). */
  eosTokenIds?: number[];
  /** Most samples decoding at once (default 64). */
  maxBatchSize?: number;
  /**
   * KV cache capacity in tokens over all sequences (default: what 2 GiB hold in the model's compute
   * dtype at the engine's creation, at most 65,536).
   */
  maxCachedTokens?: number;
  /** Tokens per cache block (default 16). */
  blockSize?: number;
  /** Prompt tokens prefilled in one step at most, beyond the first admitted prompt (default 4096). */
  maxPrefillTokens?: number;
  /** Drop special tokens from the text (default true, as OpenAI-compatible servers do). */
  skipSpecialTokens?: boolean;
}

/** Counters of the engine and its cache (tests, monitoring). */
export interface EngineStats extends GeneratorStats {
  queued: number;
  running: number;
}

/** An error about a request itself (bad parameters, cannot fit): the caller's to fix. */
export class GenerationRequestError extends Error {
  override name = 'GenerationRequestError';
}

/** A prompt's images and rotary positions (Qwen3-VL); absent for a text model's prompts. */
interface PromptLayout {
  /** [3, prompt length]: get_rope_index's positions. */
  positions: Int32Array;
  /** Position of token i after the prompt = i + ropeDelta. */
  ropeDelta: number;
  /** Indices of the prompt's image tokens, and its images (none: text only). */
  imageRows: number[];
  images: ProcessedImage[];
}

interface Resolved {
  n: number;
  layout: PromptLayout | null;
  maxNewTokens: number;
  sampler: Omit<NativeSamplerParams, 'stream' | 'counter'>;
  stop: string[];
  stopIds: Set<number>;
}

interface SampleState {
  index: number;
  seq: number; // cache sequence, -1 before the prefill or after finishing
  tokenIds: number[];
  logprobs: number[];
  detok: IncrementalDetokenizer | null;
  text: string;
  streamed: number; // characters of text already sent as deltas
  finish: FinishReason | null;
}

interface RequestState {
  request: GenerationRequest;
  params: Resolved;
  promptSeq: number;
  blocks: number; // reserved cache blocks
  samples: SampleState[];
  settled: boolean;
  resolve: (r: GenerationResult) => void;
  reject: (e: Error) => void;
}

const GIB = 1024 ** 3;

function integerIn(v: unknown, name: string, lo: number, hi: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi)
    throw new GenerationRequestError(`${name} must be an integer in [${lo}, ${hi}], got ${String(v)}`);
  return v;
}

function numberIn(v: unknown, name: string, ok: (x: number) => boolean, range: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || !ok(v))
    throw new GenerationRequestError(`${name} must be a number ${range}, got ${String(v)}`);
  return v;
}

/**
 * Most tokens in one forward for its linear layers and head to run as the few-row product
 * (native/core/gemv.h kGemvMaxRows), whose rows do not depend on one another; past it they run as a
 * GEMM, whose bits for a row may depend on the others.
 */
export const FEW_ROW_MAX_TOKENS = 128;

interface StepPart {
  seq: number;
  ids: readonly number[];
  draws: { request: RequestState; sample: SampleState }[];
  /** Tokens the sequence held before the step. */
  start: number;
  /** The request's prompt layout; `prompt`: these ids are the prompt (prefill). */
  layout: PromptLayout | null;
  prompt: boolean;
}

/**
 * The step's sequences in forwards of at most FEW_ROW_MAX_TOKENS tokens (a longer prompt alone in
 * its own), in order. A decode row or a short prompt then always runs through the few-row product,
 * so its tokens and log-probs are the same bits whether a long prompt is prefilled beside it or not.
 */
export function fewRowGroups<P extends { ids: readonly number[] }>(parts: readonly P[]): P[][] {
  const groups: P[][] = [];
  let current: P[] = [];
  let size = 0;
  for (const p of parts) {
    if (current.length > 0 && size + p.ids.length > FEW_ROW_MAX_TOKENS) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(p);
    size += p.ids.length;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

const DEFAULT_BLOCK_SIZE = 16;

/**
 * KV cache tokens one request can hold at most: its prompt's whole blocks once (the samples share its prefill),
 * then each sample's blocks up to maxNewTokens. A one-request caller (medix generate) sizes the cache with it.
 */
export function requestCachedTokens(
  promptLength: number,
  n: number,
  maxNewTokens: number,
  blockSize = DEFAULT_BLOCK_SIZE,
) {
  const shared = Math.floor(promptLength / blockSize);
  const perSample = Math.ceil((promptLength + maxNewTokens) / blockSize) - shared;
  return (shared + n * perSample) * blockSize;
}

export class Qwen3GenerationEngine implements GenerationEngine {
  private readonly gen: NativeGenerator;
  private readonly tokenizer: TextTokenizer | undefined;
  private readonly eos: Set<number>;
  private readonly vocab: number;
  private readonly blockSize: number;
  private readonly numBlocks: number;
  private readonly maxBatch: number;
  private readonly maxPrefill: number;
  private readonly skipSpecial: boolean;
  /** Qwen3-VL: multimodal rotary positions, and where images go when the model has a vision tower. */
  private readonly mrope: boolean;
  private readonly vision: RopeIndexOptions | null;
  private readonly queue: RequestState[] = [];
  private readonly running: RequestState[] = [];
  private reservedBlocks = 0;
  private loop: Promise<void> | null = null;
  private closing = false;
  private closed = false;

  constructor(model: Model, options: EngineOptions = {}) {
    const c = model.config;
    // K and V of every layer, in the compute dtype (the cache follows it: made now, kept as it is).
    const bytesPerToken = 2 * c.numLayers * c.numKvHeads * c.headDim * (computeDtype(model) === 'bf16' ? 2 : 4);
    const maxTokens = options.maxCachedTokens ?? Math.min(65536, Math.floor((2 * GIB) / bytesPerToken));
    this.blockSize = integerIn(options.blockSize ?? DEFAULT_BLOCK_SIZE, 'EngineOptions.blockSize', 1, 4096);
    integerIn(maxTokens, 'EngineOptions.maxCachedTokens', this.blockSize, 2 ** 31 - 1);
    this.numBlocks = Math.floor(maxTokens / this.blockSize);
    this.maxBatch = integerIn(options.maxBatchSize ?? 64, 'EngineOptions.maxBatchSize', 1, 1 << 20);
    this.maxPrefill = integerIn(options.maxPrefillTokens ?? 4096, 'EngineOptions.maxPrefillTokens', 1, 2 ** 31 - 1);
    this.tokenizer = options.tokenizer;
    this.eos = new Set(options.eosTokenIds ?? options.tokenizer?.eosTokenIds ?? []);
    this.vocab = c.vocabSize;
    this.skipSpecial = options.skipSpecialTokens ?? true;
    this.mrope = (c.mropeSection?.length ?? 0) > 0;
    const { vision, imageTokenId } = c;
    this.vision = vision && imageTokenId !== undefined ? { imageTokenId, merge: vision.spatialMergeSize } : null;
    this.gen = createNativeGenerator(model, this.blockSize, this.numBlocks);
  }

  /** Tokens the KV cache holds over all sequences. */
  get cachedTokenCapacity(): number {
    return this.numBlocks * this.blockSize;
  }

  stats(): EngineStats {
    if (this.closed) throw new Error('generation engine: closed');
    return { ...this.gen.stats(), queued: this.queue.length, running: this.running.length };
  }

  generate(request: GenerationRequest): Promise<GenerationResult> {
    return new Promise<GenerationResult>((resolve, reject) => {
      if (this.closing) throw new Error('generation engine: closed; no new requests are accepted');
      const params = this.resolve(request);
      const blocks = this.blocksFor(request.promptIds.length, params);
      if (blocks > this.numBlocks)
        throw new GenerationRequestError(
          `a prompt of ${request.promptIds.length} tokens with n = ${params.n} and maxNewTokens = ${params.maxNewTokens} ` +
            `needs up to ${blocks * this.blockSize} cached tokens; the engine's KV cache holds ` +
            `${this.cachedTokenCapacity} (raise maxCachedTokens, or lower n or maxNewTokens)`,
        );
      const samples = Array.from({ length: params.n }, (_, index) => this.newSample(index));
      this.queue.push({ request, params, promptSeq: -1, blocks, samples, settled: false, resolve, reject });
      this.kick();
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.loop) await this.loop;
    if (!this.closed) {
      this.closed = true;
      this.gen.close();
    }
  }

  // -------------------------------------------------------------------------------------------
  // Requests

  private resolve(request: GenerationRequest): Resolved {
    const ids = request.promptIds;
    if (!Array.isArray(ids) || ids.length === 0)
      throw new GenerationRequestError('promptIds must be a non-empty array of token ids');
    ids.forEach((id, i) => integerIn(id, `promptIds[${i}]`, 0, this.vocab - 1));
    const p: SamplingParams = request.params ?? {};
    const n = integerIn(p.n ?? 1, 'n', 1, this.maxBatch);
    const maxNewTokens = integerIn(p.maxNewTokens ?? 256, 'maxNewTokens', 1, 2 ** 31 - 1);
    const temperature = numberIn(p.temperature ?? 1, 'temperature', (x) => x >= 0, '>= 0');
    const topP = numberIn(p.topP ?? 1, 'topP', (x) => x > 0 && x <= 1, 'in (0, 1]');
    const topK = integerIn(p.topK ?? 0, 'topK', -1, 2 ** 31 - 1);
    const minP = numberIn(p.minP ?? 0, 'minP', (x) => x >= 0 && x <= 1, 'in [0, 1]');
    const repetitionPenalty = numberIn(p.repetitionPenalty ?? 1, 'repetitionPenalty', (x) => x > 0, '> 0');
    const seed = integerIn(p.seed ?? Math.floor(Math.random() * 2 ** 32), 'seed', 0, 2 ** 53);
    const stop = p.stop ?? [];
    if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s.length === 0))
      throw new GenerationRequestError('stop must be an array of non-empty strings');
    if (stop.length > 0 && !this.tokenizer)
      throw new GenerationRequestError('stop strings need a tokenizer; the engine was created without one');
    const stopIds = new Set<number>(p.ignoreEos ? [] : this.eos);
    (p.stopTokenIds ?? []).forEach((id, i) => stopIds.add(integerIn(id, `stopTokenIds[${i}]`, 0, this.vocab - 1)));
    const layout = this.layout(request);
    const sampler = { temperature, topP, topK, minP, repetitionPenalty, seed };
    return { n, layout, maxNewTokens, sampler, stop, stopIds };
  }

  /** A Qwen3-VL prompt's positions and images; null for a model without multimodal positions. */
  private layout(request: GenerationRequest): PromptLayout | null {
    const images = request.images ?? [];
    if (images.length > 0 && !this.vision)
      throw new GenerationRequestError(`the request has ${images.length} image(s) but the model has no vision tower`);
    if (!this.mrope || !this.vision) return null;
    const ids = Int32Array.from(request.promptIds);
    let positions: Int32Array;
    try {
      positions = multimodalPositions(ids, stackImages(images).grids, this.vision);
    } catch (e) {
      throw new GenerationRequestError(`the prompt's image tokens do not fit its images: ${(e as Error).message}`);
    }
    const imageRows: number[] = [];
    ids.forEach((id, i) => id === this.vision!.imageTokenId && imageRows.push(i));
    const ropeDelta = positions.reduce((m, x) => Math.max(m, x), -1) + 1 - ids.length;
    return { positions, ropeDelta, imageRows, images };
  }

  /** Worst-case blocks: the prompt's full blocks once, then each sample's own blocks to the end. */
  private blocksFor(promptLength: number, p: Resolved): number {
    return requestCachedTokens(promptLength, p.n, p.maxNewTokens, this.blockSize) / this.blockSize;
  }

  private newSample(index: number): SampleState {
    const detok = this.tokenizer
      ? new IncrementalDetokenizer(this.tokenizer, { skipSpecialTokens: this.skipSpecial })
      : null;
    return { index, seq: -1, tokenIds: [], logprobs: [], detok, text: '', streamed: 0, finish: null };
  }

  // -------------------------------------------------------------------------------------------
  // The loop: one native step at a time while anything is queued or running.

  private kick(): void {
    if (this.loop) return;
    this.loop = this.runLoop().finally(() => {
      this.loop = null;
      if (this.queue.length > 0) this.kick();
    });
  }

  private async runLoop(): Promise<void> {
    for (;;) {
      try {
        this.dropAborted();
        const admitted = this.admit();
        if (this.running.length === 0) return;
        await this.step(admitted);
      } catch (err) {
        // A failed step leaves the cache state of its sequences unknown, and a failure outside a
        // step would recur on the next turn: fail everything the engine holds.
        for (const r of [...this.running]) this.fail(r, err as Error);
        for (const r of this.queue.splice(0)) {
          r.settled = true;
          r.reject(err as Error);
        }
      }
    }
  }

  private activeSamples(): number {
    let n = 0;
    for (const r of this.running) for (const s of r.samples) if (!s.finish) n++;
    return n;
  }

  /** Moves queued requests into the batch while samples, cache blocks and the prefill budget allow. */
  private admit(): RequestState[] {
    const admitted: RequestState[] = [];
    let samples = this.activeSamples();
    let prefill = 0;
    while (this.queue.length > 0) {
      const r = this.queue[0];
      const fits =
        samples + r.params.n <= this.maxBatch &&
        this.reservedBlocks + r.blocks <= this.numBlocks &&
        (admitted.length === 0 || prefill + r.request.promptIds.length <= this.maxPrefill);
      if (!fits) break;
      this.queue.shift();
      samples += r.params.n;
      prefill += r.request.promptIds.length;
      this.reservedBlocks += r.blocks;
      r.promptSeq = this.gen.addSequence();
      this.running.push(r);
      admitted.push(r);
    }
    return admitted;
  }

  private async step(admitted: RequestState[]): Promise<void> {
    // One part per sequence: its new tokens (the last sampled token, or a whole prompt) and the
    // samples drawn from its last token.
    const parts: StepPart[] = [];
    for (const r of this.running) {
      if (admitted.includes(r)) continue;
      const { promptIds } = r.request;
      for (const s of r.samples)
        if (!s.finish)
          parts.push({
            seq: s.seq,
            ids: [s.tokenIds[s.tokenIds.length - 1]],
            draws: [{ request: r, sample: s }],
            start: promptIds.length + s.tokenIds.length - 1,
            layout: r.params.layout,
            prompt: false,
          });
    }
    for (const r of admitted)
      parts.push({
        seq: r.promptSeq,
        ids: r.request.promptIds,
        draws: r.samples.map((sample) => ({ request: r, sample })),
        start: 0,
        layout: r.params.layout,
        prompt: true,
      });
    for (const group of fewRowGroups(parts)) await this.forwardAndSample(group);
    for (const r of admitted) if (!r.settled) this.seatSamples(r);
    for (const r of [...this.running]) if (!r.settled && r.samples.every((s) => s.finish)) this.finish(r);
  }

  /** One forward over the parts' tokens, then one draw per sample. */
  private async forwardAndSample(parts: readonly StepPart[]): Promise<void> {
    const tokens: number[] = [];
    const cu: number[] = [0];
    const logitRows: number[] = [];
    const sampling: NativeSamplerParams[] = [];
    const owners: { request: RequestState; sample: SampleState }[] = [];
    for (const part of parts) {
      tokens.push(...part.ids);
      cu.push(tokens.length);
      for (const d of part.draws) {
        logitRows.push(tokens.length - 1);
        sampling.push({ ...d.request.params.sampler, stream: d.sample.index, counter: d.sample.tokenIds.length });
        owners.push(d);
      }
    }
    const out = await this.gen.step({
      tokens: Int32Array.from(tokens),
      seqIds: parts.map((p) => p.seq),
      cuSeqlens: Int32Array.from(cu),
      logitRows: Int32Array.from(logitRows),
      sampling,
      positions: this.mrope ? stepPositions(parts, tokens.length) : undefined,
      images: stepImages(parts, cu),
    });
    owners.forEach(({ request, sample }, i) => {
      if (!request.settled) this.accept(request, sample, out.tokens[i], out.logprobs[i]);
    });
  }

  /** After the prefill: the first unfinished sample keeps the prompt's sequence, the others fork it. */
  private seatSamples(r: RequestState): void {
    const open = r.samples.filter((s) => !s.finish);
    if (open.length === 0) return;
    open.forEach((s, i) => (s.seq = i === 0 ? r.promptSeq : this.gen.fork(r.promptSeq)));
    r.promptSeq = -1;
  }

  /** Records one sampled token: stop checks, text, streaming. */
  private accept(r: RequestState, s: SampleState, token: number, logprob: number): void {
    const p = r.params;
    s.tokenIds.push(token);
    s.logprobs.push(logprob);
    if (p.stopIds.has(token)) {
      s.finish = 'stop';
    } else if (s.detok) {
      s.text += s.detok.push(token);
    }
    if (!s.finish && s.tokenIds.length >= p.maxNewTokens) s.finish = 'length';
    if (s.finish && s.detok) s.text += s.detok.flush();
    if (p.stop.length > 0 && this.cutAtStop(s, p.stop)) s.finish = 'stop';
    // Text that might still become the start of a stop string is held back until it cannot.
    const holdBack = s.finish ? 0 : Math.max(0, ...p.stop.map((x) => x.length - 1));
    const end = Math.max(s.streamed, s.text.length - holdBack);
    const textDelta = s.text.slice(s.streamed, end);
    s.streamed = end;
    if (s.finish) this.release(r, s);
    if (r.request.onToken) {
      try {
        r.request.onToken({ sample: s.index, tokenId: token, logprob, textDelta });
      } catch (err) {
        this.fail(r, new Error(`onToken callback threw: ${(err as Error).message}`));
      }
    }
  }

  /** Truncates the text before the first stop string; true if one was found. */
  private cutAtStop(s: SampleState, stop: string[]): boolean {
    let at = -1;
    for (const x of stop) {
      const i = s.text.indexOf(x);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at < 0) return false;
    s.text = s.text.slice(0, at);
    s.streamed = Math.min(s.streamed, at);
    return true;
  }

  private release(_r: RequestState, s: SampleState): void {
    if (s.seq >= 0) this.gen.free(s.seq);
    s.seq = -1;
  }

  private dropAborted(): void {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const r = this.queue[i];
      if (!r.request.signal?.aborted) continue;
      this.queue.splice(i, 1);
      for (const s of r.samples) s.finish = 'abort';
      r.settled = true;
      r.resolve(this.result(r));
    }
    for (const r of [...this.running]) {
      if (!r.request.signal?.aborted) continue;
      for (const s of r.samples) if (!s.finish) s.finish = 'abort';
      this.finish(r);
    }
  }

  private leave(r: RequestState): void {
    for (const s of r.samples) this.release(r, s);
    if (r.promptSeq >= 0) this.gen.free(r.promptSeq);
    r.promptSeq = -1;
    this.running.splice(this.running.indexOf(r), 1);
    this.reservedBlocks -= r.blocks;
    r.settled = true;
  }

  private finish(r: RequestState): void {
    this.leave(r);
    r.resolve(this.result(r));
  }

  private fail(r: RequestState, err: Error): void {
    if (r.settled) return;
    for (const s of r.samples) if (!s.finish) s.finish = 'abort';
    this.leave(r);
    r.reject(err);
  }

  private result(r: RequestState): GenerationResult {
    const samples: GeneratedSample[] = r.samples.map((s) => ({
      tokenIds: s.tokenIds,
      text: s.text,
      logprobs: s.logprobs,
      finishReason: s.finish ?? 'abort',
    }));
    return { promptTokens: r.request.promptIds.length, samples };
  }
}

/**
 * Multimodal positions [3, T] of a step: a prompt's own (t, h, w) rows; any other token the cache
 * index plus its request's rope delta on all three rows (plain numbering for a text model's prompts).
 */
function stepPositions(parts: readonly StepPart[], T: number): Int32Array {
  const out = new Int32Array(3 * T);
  let at = 0;
  for (const p of parts) {
    const n = p.ids.length;
    for (let c = 0; c < 3; c++)
      if (p.prompt && p.layout) out.set(p.layout.positions.subarray(c * n, (c + 1) * n), c * T + at);
      else for (let j = 0; j < n; j++) out[c * T + at + j] = p.start + j + (p.layout?.ropeDelta ?? 0);
    at += n;
  }
  return out;
}

/** The images of the step's prompts, in order, and the step tokens their features replace. */
function stepImages(parts: readonly StepPart[], cu: readonly number[]): GeneratorStep['images'] {
  const withImages = parts.map((p, i) => ({ p, at: cu[i] })).filter(({ p }) => p.prompt && p.layout?.imageRows.length);
  if (withImages.length === 0) return undefined;
  return {
    ...stackImages(withImages.flatMap(({ p }) => p.layout!.images)),
    rows: Int32Array.from(withImages.flatMap(({ p, at }) => p.layout!.imageRows.map((r) => at + r))),
  };
}

/** A generation engine over `model` (see EngineOptions). */
export function createGenerationEngine(model: Model, options: EngineOptions = {}): Qwen3GenerationEngine {
  return new Qwen3GenerationEngine(model, options);
}
