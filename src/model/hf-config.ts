// Hugging Face config.json -> engine Qwen3Config. Accepts Qwen3, Qwen3-MoE, Qwen3-VL and Qwen3-VL-MoE
// (the vision tower and the experts), in both the transformers 4 (rope_theta, rope_scaling) and 5 (rope_parameters)
// spellings. Anything the engine does not implement is refused with the file and the field named.
import type { Qwen3Config } from '../engine/model.js';
import { visionConfigFromHf } from './hf-vision-config.js';
import { moeFields } from './moe-config.js';

export class ConfigError extends Error {}

type Json = Record<string, unknown>;

export interface HfModelInfo {
  config: Qwen3Config;
  /** "qwen3", "qwen3_vl", "qwen3_moe" or "qwen3_vl_moe". */
  modelType: string;
  /** The language model's max_position_embeddings: the most tokens a sequence is meant to hold (when given). */
  contextLength?: number;
}

export function parseHfConfig(json: unknown, file: string): HfModelInfo {
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new ConfigError(`${file}: not a JSON object`);
  const info = parseModel(json as Json, file);
  const text = (typeof (json as Json).text_config === 'object' ? (json as Json).text_config : json) as Json | null;
  const context = text?.max_position_embeddings;
  return typeof context === 'number' && Number.isInteger(context) && context > 0
    ? { ...info, contextLength: context }
    : info;
}

function parseModel(root: Json, file: string): HfModelInfo {
  const modelType = root.model_type;
  checkArchitectures(root, file);
  if (modelType === 'qwen3') return { config: textConfig(root, file, '', 'model.', root), modelType };
  if (modelType === 'qwen3_moe') {
    const config = textConfig(root, file, '', 'model.', root);
    return { config: { ...config, ...moeFields(root, file, '', config.numLayers) }, modelType };
  }
  if (modelType === 'qwen3_vl' || modelType === 'qwen3_vl_moe') {
    const text = root.text_config;
    if (typeof text !== 'object' || text === null)
      throw new ConfigError(`${file}: ${modelType} config has no text_config`);
    const config = textConfig(text as Json, file, 'text_config.', 'model.language_model.', root);
    visionFields(config, root, file, modelType);
    if (modelType === 'qwen3_vl') return { config, modelType };
    return {
      config: { ...config, ...moeFields(text as Json, file, 'text_config.', config.numLayers, true) },
      modelType,
    };
  }
  throw new ConfigError(
    `${file}: model_type ${JSON.stringify(modelType)} is not supported (supported: "qwen3", "qwen3_vl", "qwen3_moe", "qwen3_vl_moe")`,
  );
}

/** Qwen3-VL's vision tower and the token its outputs replace, onto `config`. */
function visionFields(config: Qwen3Config, root: Json, file: string, modelType: string): void {
  const vision = root.vision_config;
  if (typeof vision !== 'object' || vision === null)
    throw new ConfigError(`${file}: ${modelType} config has no vision_config`);
  const imageToken = root.image_token_id;
  if (typeof imageToken !== 'number' || !Number.isInteger(imageToken) || imageToken < 0)
    throw new ConfigError(`${file}: image_token_id must be a token id, got ${JSON.stringify(imageToken)}`);
  try {
    config.vision = visionConfigFromHf(vision as Json, file);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
  config.imageTokenId = imageToken;
}

/** The class transformers would build for each supported model_type. */
const ARCHITECTURES: Record<string, string> = {
  qwen3: 'Qwen3ForCausalLM',
  qwen3_vl: 'Qwen3VLForConditionalGeneration',
  qwen3_moe: 'Qwen3MoeForCausalLM',
  qwen3_vl_moe: 'Qwen3VLMoeForConditionalGeneration',
};

// `architectures` says which head the weights belong to (e.g. Qwen3ForSequenceClassification has
// a score head instead of lm_head): anything but the causal-LM class is refused, naming the field.
function checkArchitectures(root: Json, file: string): void {
  const archs = root.architectures;
  if (archs === undefined || archs === null) return;
  const expected = ARCHITECTURES[root.model_type as string];
  if (expected === undefined) return; // model_type itself is refused below, with the supported list
  if (!Array.isArray(archs) || archs.length !== 1 || archs[0] !== expected)
    throw new ConfigError(
      `${file}: architectures = ${JSON.stringify(archs)} is not supported for model_type "${root.model_type}" (expected ["${expected}"])`,
    );
}

function textConfig(c: Json, file: string, path: string, prefix: string, root: Json): Qwen3Config {
  const int = (key: string, fallback?: number): number => {
    const v = c[key] ?? fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0)
      throw new ConfigError(`${file}: ${path}${key} must be a positive integer, got ${JSON.stringify(c[key])}`);
    return v;
  };
  const refuse = (key: string, why: string): never => {
    throw new ConfigError(`${file}: ${path}${key} = ${JSON.stringify(c[key])} is not supported (${why})`);
  };
  if (c.attention_bias === true) refuse('attention_bias', 'Qwen3 has no attention biases');
  if (c.hidden_act !== undefined && c.hidden_act !== 'silu') refuse('hidden_act', 'only silu');
  if (c.use_sliding_window === true) refuse('use_sliding_window', 'only full attention');

  const rope = (c.rope_parameters ?? c.rope_scaling ?? {}) as Json;
  const ropeType = rope.rope_type ?? rope.type ?? 'default';
  if (ropeType !== 'default' && ropeType !== 'mrope')
    throw new ConfigError(`${file}: ${path}rope type ${JSON.stringify(ropeType)} is not supported (only default rope)`);
  const theta = (rope.rope_theta ?? c.rope_theta ?? 1e6) as number;
  if (typeof theta !== 'number' || !(theta > 0)) throw new ConfigError(`${file}: ${path}rope_theta must be > 0`);

  const hidden = int('hidden_size');
  const heads = int('num_attention_heads');
  const config: Qwen3Config = {
    vocabSize: int('vocab_size'),
    hiddenSize: hidden,
    intermediateSize: int('intermediate_size'),
    numLayers: int('num_hidden_layers'),
    numHeads: heads,
    numKvHeads: int('num_key_value_heads', heads),
    headDim: int('head_dim', Math.floor(hidden / heads)),
    ropeTheta: theta,
    rmsEps: (c.rms_norm_eps ?? 1e-6) as number,
    tieEmbeddings: Boolean(root.tie_word_embeddings ?? c.tie_word_embeddings ?? false),
    prefix,
  };
  if (Array.isArray(rope.mrope_section)) {
    config.mropeSection = rope.mrope_section as number[];
    // transformers applies Qwen3-VL's sections interleaved whatever the flag says.
    config.mropeInterleaved = String(root.model_type).startsWith('qwen3_vl') ? true : Boolean(rope.mrope_interleaved);
  }
  return config;
}
