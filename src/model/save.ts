// Writes an engine Model as a Hugging Face model directory: config.json, generation_config.json,
// the tokenizer files, and safetensors shards with model.safetensors.index.json (or a single
// model.safetensors when it fits one shard), the layout transformers' save_pretrained produces.
// The directory is assembled under a temporary name and renamed into place, so a reader never
// sees a half-written model, and an existing directory is only replaced when asked to.
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Model, ParamInfo } from '../engine/model.js';
import { atomicWriteFileSync, fsyncDir } from '../util/atomic-write.js';
import { qwen3HfConfig, qwen3VlProcessorConfig, withDtype, type SaveDtype } from './hf-config-write.js';
import { bytesOf, f32ToBf16, tensorBytes, writeSafetensors, type TensorSource } from './safetensors-writer.js';
import { CheckpointError } from './load.js';
import { dirTemplateReadsImages, QWEN3_VL_CHAT_TEMPLATE } from './vision/chat-template.js';
import { expertTensorsToWrite } from './moe-layout.js';

/** Tokenizer files transformers and medix read, copied when present. */
export const TOKENIZER_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'vocab.json',
  'merges.txt',
  'special_tokens_map.json',
  'added_tokens.json',
  'chat_template.jinja',
];
/** Image processor settings of a vision-language model (Qwen3-VL), copied from the same directory. */
export const PROCESSOR_FILES = ['preprocessor_config.json', 'video_preprocessor_config.json'];

export interface SaveOptions {
  /** Weight dtype in the files (default bf16, as released Qwen3 checkpoints). */
  dtype?: SaveDtype;
  /** Largest shard in bytes (default 5 GB, transformers' default). */
  maxShardBytes?: number;
  /** The source model's config.json contents, kept as is (dtype updated); default: written from the engine config. */
  config?: Record<string, unknown>;
  /** generation_config.json contents; default: the special token ids of the config, as transformers derives it. */
  generationConfig?: Record<string, unknown>;
  /** Directory whose tokenizer (and image processor) files are copied alongside. */
  tokenizerDir?: string;
  /** Replace an existing directory (default false: refuse). */
  overwrite?: boolean;
}

/** What transformers' GenerationConfig.from_model_config keeps: the special token ids (text model's for a VL config). */
function generationConfigFrom(config: Record<string, unknown>): Record<string, unknown> {
  const text = (
    typeof config.text_config === 'object' && config.text_config !== null ? config.text_config : {}
  ) as Record<string, unknown>;
  const out: Record<string, unknown> = { _from_model_config: true };
  for (const key of ['bos_token_id', 'eos_token_id', 'pad_token_id']) {
    const v = config[key] ?? text[key];
    if (v !== undefined && v !== null) out[key] = v;
  }
  return out;
}

/**
 * The weights of `params` (default: all of the model's) as tensors to write. A sparse layer's fused
 * experts are written in the layout transformers expects for the model type (moe-layout.ts).
 */
export function tensorSources(
  model: Model,
  dtype: SaveDtype,
  params: readonly ParamInfo[] = model.parameters(),
): TensorSource[] {
  const type = !model.config.numExperts ? 'qwen3' : model.config.mropeSection ? 'qwen3_vl_moe' : 'qwen3_moe';
  // The expert tensors of one fused parameter are written one after another: read it once.
  let cached: { name: string; data: Float32Array } | null = null;
  const fused = (name: string) => {
    if (cached?.name !== name) cached = { name, data: model.getParameter(name) };
    return cached.data;
  };
  const source = (name: string, shape: number[], values: () => Float32Array): TensorSource => ({
    name,
    dtype: dtype === 'bf16' ? 'BF16' : 'F32',
    shape,
    bytes: () => {
      const w = values();
      return bytesOf(dtype === 'bf16' ? f32ToBf16(w) : w);
    },
  });
  return params.flatMap((p) => {
    const experts = expertTensorsToWrite(type, p, () => fused(p.name));
    if (experts) return experts.map((e) => source(e.name, e.shape, e.values));
    return [source(p.name, [...p.shape], () => model.getParameter(p.name))];
  });
}

/** Greedy shards in parameter order, each at most maxBytes (a larger single tensor gets its own). */
export function planShards(tensors: readonly TensorSource[], maxBytes: number): TensorSource[][] {
  const shards: TensorSource[][] = [];
  let current: TensorSource[] = [];
  let size = 0;
  for (const t of tensors) {
    const n = tensorBytes(t);
    if (current.length && size + n > maxBytes) {
      shards.push(current);
      current = [];
      size = 0;
    }
    current.push(t);
    size += n;
  }
  if (current.length) shards.push(current);
  return shards;
}

/** What transformers writes in a weights file's metadata. */
export const SAFETENSORS_METADATA = { format: 'pt' };

/** The name transformers gives weights file i (from 0) of n. */
export function weightShardName(i: number, n: number): string {
  return `model-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.safetensors`;
}

/** model.safetensors.index.json for weights split over several files. */
export function writeWeightIndex(
  dir: string,
  files: readonly { file: string; tensors: readonly TensorSource[] }[],
): void {
  const weightMap: Record<string, string> = {};
  let total = 0;
  for (const { file, tensors } of files)
    for (const t of tensors) {
      weightMap[t.name] = file;
      total += tensorBytes(t);
    }
  atomicWriteFileSync(
    join(dir, 'model.safetensors.index.json'),
    `${JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }, null, 2)}\n`,
  );
}

/** Everything of a model directory but the weights: config.json, generation_config.json, tokenizer and processor files. */
export function writeModelMetadata(
  model: Model,
  dir: string,
  options: Pick<SaveOptions, 'dtype' | 'config' | 'generationConfig' | 'tokenizerDir'> = {},
): void {
  const dtype = options.dtype ?? 'bf16';
  const json = (name: string, value: unknown) =>
    atomicWriteFileSync(join(dir, name), `${JSON.stringify(value, null, 2)}\n`);
  const config = options.config ? withDtype(options.config, dtype) : qwen3HfConfig(model.config, dtype);
  json('config.json', config);
  json('generation_config.json', options.generationConfig ?? generationConfigFrom(config));
  if (options.tokenizerDir)
    for (const f of [...TOKENIZER_FILES, ...PROCESSOR_FILES])
      if (existsSync(join(options.tokenizerDir, f))) copyFileSync(join(options.tokenizerDir, f), join(dir, f));
  // A Qwen3-VL model always leaves with image processor settings: Qwen3-VL's defaults when none came along.
  if (model.config.vision && !existsSync(join(dir, 'preprocessor_config.json')))
    json('preprocessor_config.json', qwen3VlProcessorConfig(model.config));
  // ... and with a chat template that places its images (medix's, when the one that came along cannot).
  if (model.config.vision && !dirTemplateReadsImages(dir))
    atomicWriteFileSync(join(dir, 'chat_template.jinja'), QWEN3_VL_CHAT_TEMPLATE);
}

/**
 * Whether saveModel may write `dir`: absent, or with `overwrite` a model directory (config.json) or an
 * empty one, so a mistyped path never deletes other files. Callers check it before long work.
 */
export function assertReplaceable(dir: string, overwrite: boolean): void {
  if (!existsSync(dir)) return;
  if (!overwrite) throw new CheckpointError(`${dir}: already exists (pass --overwrite to replace the model in it)`);
  if (!(statSync(dir).isDirectory() && (existsSync(join(dir, 'config.json')) || readdirSync(dir).length === 0)))
    throw new CheckpointError(`${dir}: not a model directory (no config.json): only a model directory is replaced`);
}

export function saveModel(model: Model, dir: string, options: SaveOptions = {}): void {
  const dtype = options.dtype ?? 'bf16';
  const maxShard = options.maxShardBytes ?? 5e9;
  if (!(maxShard > 0)) throw new CheckpointError(`saveModel: maxShardBytes must be > 0, got ${maxShard}`);
  assertReplaceable(dir, options.overwrite === true);
  const tmp = join(dirname(dir), `.${basename(dir)}.partial-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { recursive: true });
  try {
    writeModelMetadata(model, tmp, options);
    const shards = planShards(tensorSources(model, dtype), maxShard);
    if (shards.length === 1) writeSafetensors(join(tmp, 'model.safetensors'), shards[0], SAFETENSORS_METADATA);
    else {
      const files = shards.map((shard, i) => {
        const file = weightShardName(i, shards.length);
        writeSafetensors(join(tmp, file), shard, SAFETENSORS_METADATA);
        return { file, tensors: shard };
      });
      writeWeightIndex(tmp, files);
    }
    fsyncDir(tmp);
    if (existsSync(dir)) {
      // Replace: move the old directory aside first so some complete model exists at every moment.
      const old = join(dirname(dir), `.${basename(dir)}.old-${process.pid}`);
      renameSync(dir, old);
      renameSync(tmp, dir);
      rmSync(old, { recursive: true, force: true });
    } else renameSync(tmp, dir);
    fsyncDir(dirname(dir));
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
