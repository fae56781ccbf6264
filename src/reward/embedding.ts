// Sentence embeddings for the reward's accuracy_embed component: an encoder exported to ONNX (e.g.
// MedEmbed or BGE) run by onnxruntime-node, with the model's own tokenizer.json read by
// @huggingface/tokenizers, padded batches, CLS or attention-masked mean pooling, optional L2
// normalisation. The session and tokenizer are loaded once per instance (once per worker).
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import * as ort from 'onnxruntime-node';

export type Pooling = 'cls' | 'mean';

export interface EmbedderOptions {
  /** The .onnx file. */
  model: string;
  /** The model's tokenizer.json. */
  tokenizer: string;
  pooling: Pooling;
  normalize: boolean;
  /** Texts per ONNX run. */
  batchSize: number;
  /** Tokens per text at most, special tokens included. */
  maxLength: number;
  /** Output to read; default last_hidden_state, else the model's first output. A rank-2 output is taken as already pooled. */
  output?: string;
  /** onnxruntime intra-op threads (1 per worker keeps a pool of workers from oversubscribing the cores). */
  threads?: number;
}

export class EmbeddingModelError extends Error {
  override name = 'EmbeddingModelError';
}

/**
 * Pools a [batch, tokens, hidden] tensor into one vector per row: the first token ('cls') or the
 * mean over positions whose mask is 1 ('mean'); padding never contributes.
 */
export function poolHidden(
  hidden: Float32Array,
  dims: readonly number[],
  mask: readonly (readonly number[])[],
  pooling: Pooling,
): Float32Array[] {
  const [batch, tokens, width] = dims;
  const out: Float32Array[] = [];
  for (let b = 0; b < batch; b++) {
    const v = new Float32Array(width);
    const row = b * tokens * width;
    if (pooling === 'cls') v.set(hidden.subarray(row, row + width));
    else {
      let n = 0;
      for (let t = 0; t < tokens; t++) {
        if (!mask[b][t]) continue;
        n++;
        for (let h = 0; h < width; h++) v[h] += hidden[row + t * width + h];
      }
      for (let h = 0; h < width; h++) v[h] /= Math.max(n, 1);
    }
    out.push(v);
  }
  return out;
}

export function l2Normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const n = Math.sqrt(s);
  return n > 0 ? v.map((x) => x / n) : v;
}

/** Cosine similarity; 0 when either vector is zero. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return na > 0 && nb > 0 ? dot / Math.sqrt(na * nb) : 0;
}

function readJson(file: string, what: string): object {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new EmbeddingModelError(`${what} ${file}: cannot read (${(e as Error).message})`);
  }
  try {
    return JSON.parse(text) as object;
  } catch (e) {
    throw new EmbeddingModelError(`${what} ${file}: not valid JSON (${(e as Error).message})`);
  }
}

/** The id padding uses: tokenizer.json's padding.pad_id, else a [PAD] / <pad> token, else 0 (masked out either way). */
function padId(json: { padding?: { pad_id?: unknown } | null }, tokenizer: Tokenizer): number {
  if (typeof json.padding?.pad_id === 'number') return json.padding.pad_id;
  const vocab = tokenizer.get_vocab(true);
  return vocab.get('[PAD]') ?? vocab.get('<pad>') ?? 0;
}

export class OnnxEmbedder {
  private constructor(
    readonly options: EmbedderOptions,
    private readonly session: ort.InferenceSession,
    private readonly tokenizer: Tokenizer,
    private readonly pad: number,
    private readonly outputName: string,
  ) {}

  static async load(options: EmbedderOptions): Promise<OnnxEmbedder> {
    const json = readJson(options.tokenizer, 'embedding tokenizer') as { padding?: { pad_id?: unknown } | null };
    let tokenizer: Tokenizer;
    try {
      tokenizer = new Tokenizer(json, {});
    } catch (e) {
      throw new EmbeddingModelError(
        `embedding tokenizer ${options.tokenizer}: @huggingface/tokenizers cannot load it (${(e as Error).message})`,
      );
    }
    let session: ort.InferenceSession;
    try {
      session = await ort.InferenceSession.create(options.model, {
        intraOpNumThreads: options.threads ?? 1,
        interOpNumThreads: 1,
      });
    } catch (e) {
      throw new EmbeddingModelError(
        `embedding model ${options.model}: onnxruntime cannot load it (${(e as Error).message})`,
      );
    }
    if (!session.inputNames.includes('input_ids'))
      throw new EmbeddingModelError(
        `embedding model ${options.model}: expected an 'input_ids' input, found ${session.inputNames.join(', ')}`,
      );
    const wanted =
      options.output ??
      (session.outputNames.includes('last_hidden_state') ? 'last_hidden_state' : session.outputNames[0]);
    if (!session.outputNames.includes(wanted))
      throw new EmbeddingModelError(
        `embedding model ${options.model}: no output '${wanted}' (outputs: ${session.outputNames.join(', ')})`,
      );
    return new OnnxEmbedder(options, session, tokenizer, padId(json, tokenizer), wanted);
  }

  /** Token ids with the tokenizer's special tokens, cut to maxLength keeping the last one (BERT's [SEP]). */
  tokenize(text: string): number[] {
    const ids = this.tokenizer.encode(text, { add_special_tokens: true }).ids;
    const max = this.options.maxLength;
    return ids.length <= max ? ids : [...ids.slice(0, max - 1), ids[ids.length - 1]];
  }

  /** One vector per text, in order, computed batchSize texts per run. */
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    const out: Float32Array[] = [];
    for (let i = 0; i < texts.length; i += this.options.batchSize)
      out.push(...(await this.run(texts.slice(i, i + this.options.batchSize))));
    return out;
  }

  private async run(texts: readonly string[]): Promise<Float32Array[]> {
    const rows = texts.map((t) => this.tokenize(t));
    const width = Math.max(1, ...rows.map((r) => r.length));
    const ids = new BigInt64Array(rows.length * width).fill(BigInt(this.pad));
    const mask = new BigInt64Array(rows.length * width);
    const maskRows = rows.map((r, b) => {
      r.forEach((id, t) => {
        ids[b * width + t] = BigInt(id);
        mask[b * width + t] = 1n;
      });
      return Array.from({ length: width }, (_, t) => (t < r.length ? 1 : 0));
    });
    const dims = [rows.length, width];
    const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor('int64', ids, dims) };
    const names = this.session.inputNames;
    if (names.includes('attention_mask')) feeds.attention_mask = new ort.Tensor('int64', mask, dims);
    if (names.includes('token_type_ids'))
      feeds.token_type_ids = new ort.Tensor('int64', new BigInt64Array(ids.length), dims);
    const extra = names.filter((n) => !(n in feeds));
    if (extra.length)
      throw new EmbeddingModelError(`embedding model ${this.options.model}: unsupported inputs ${extra.join(', ')}`);
    const result = (await this.session.run(feeds))[this.outputName];
    if (result.type !== 'float32')
      throw new EmbeddingModelError(
        `embedding model ${this.options.model}: output '${this.outputName}' is ${result.type}, expected float32`,
      );
    const data = result.data as Float32Array;
    let vectors: Float32Array[];
    if (result.dims.length === 3) vectors = poolHidden(data, result.dims, maskRows, this.options.pooling);
    else if (result.dims.length === 2)
      vectors = rows.map((_, b) => data.slice(b * result.dims[1], (b + 1) * result.dims[1]));
    else
      throw new EmbeddingModelError(
        `embedding model ${this.options.model}: output '${this.outputName}' has shape [${result.dims.join(', ')}], expected [batch, tokens, hidden] or [batch, hidden]`,
      );
    return this.options.normalize ? vectors.map(l2Normalize) : vectors;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
