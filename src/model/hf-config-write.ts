// Engine Qwen3Config -> Hugging Face config.json (Qwen3, Qwen3-MoE, Qwen3-VL, Qwen3-VL-MoE; the inverse
// of parseHfConfig), so a model trained from scratch or merged from a run loads in
// transformers unchanged. When the model came from a Hugging Face directory, its own config.json is
// kept instead (it may hold fields the engine does not read) and only the dtype is updated.
import type { Qwen3Config } from '../engine/model.js';
import { visionTokenIds } from './presets.js';

export type SaveDtype = 'bf16' | 'f32';

export const TORCH_DTYPE: Record<SaveDtype, string> = { bf16: 'bfloat16', f32: 'float32' };

export function qwen3HfConfig(c: Qwen3Config, dtype: SaveDtype): Record<string, unknown> {
  if (c.vision) return qwen3VlHfConfig(c, dtype);
  if (c.mropeSection)
    throw new Error(
      'writing a text-only config with multimodal rope is not supported; save with the source config.json',
    );
  const moe = c.numExperts
    ? {
        architectures: ['Qwen3MoeForCausalLM'],
        model_type: 'qwen3_moe',
        // transformers 4 reads num_experts, transformers 5 num_local_experts.
        num_experts: c.numExperts,
        num_local_experts: c.numExperts,
        num_experts_per_tok: c.numExpertsPerTok,
        moe_intermediate_size: c.moeIntermediateSize,
        decoder_sparse_step: c.decoderSparseStep ?? 1,
        mlp_only_layers: c.mlpOnlyLayers ?? [],
        norm_topk_prob: c.normTopkProb ?? true,
        router_aux_loss_coef: c.routerAuxLossCoef ?? 0.001,
        output_router_logits: false,
      }
    : {};
  return {
    architectures: ['Qwen3ForCausalLM'],
    model_type: 'qwen3',
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    hidden_act: 'silu',
    rms_norm_eps: c.rmsEps,
    rope_theta: c.ropeTheta,
    rope_scaling: null,
    attention_bias: false,
    attention_dropout: 0,
    use_sliding_window: false,
    max_position_embeddings: 40960,
    tie_word_embeddings: c.tieEmbeddings,
    initializer_range: 0.02,
    use_cache: true,
    torch_dtype: TORCH_DTYPE[dtype],
    dtype: TORCH_DTYPE[dtype],
    ...moe,
  };
}

/** The source config with its dtype fields set to what was written. */
export function withDtype(config: Record<string, unknown>, dtype: SaveDtype): Record<string, unknown> {
  const out: Record<string, unknown> = { ...config, torch_dtype: TORCH_DTYPE[dtype], dtype: TORCH_DTYPE[dtype] };
  if (typeof out.text_config === 'object' && out.text_config !== null)
    out.text_config = {
      ...(out.text_config as Record<string, unknown>),
      torch_dtype: TORCH_DTYPE[dtype],
      dtype: TORCH_DTYPE[dtype],
    };
  return out;
}

/**
 * Qwen3VLForConditionalGeneration's config.json, or Qwen3VLMoeForConditionalGeneration's when the
 * text model has experts (the inverse of parseHfConfig for qwen3_vl and qwen3_vl_moe).
 */
function qwen3VlHfConfig(c: Qwen3Config, dtype: SaveDtype): Record<string, unknown> {
  const v = c.vision!;
  const ids = visionTokenIds(c.imageTokenId!);
  const type = c.numExperts ? 'qwen3_vl_moe' : 'qwen3_vl';
  const text = qwen3HfConfig({ ...c, vision: undefined, mropeSection: undefined }, dtype);
  // tie_word_embeddings stays in text_config too: transformers ties lm_head by the text config's flag.
  for (const key of ['architectures', 'rope_theta', 'rope_scaling', 'use_sliding_window']) delete text[key];
  return {
    architectures: [c.numExperts ? 'Qwen3VLMoeForConditionalGeneration' : 'Qwen3VLForConditionalGeneration'],
    model_type: type,
    image_token_id: c.imageTokenId,
    video_token_id: ids.video,
    vision_start_token_id: ids.visionStart,
    vision_end_token_id: ids.visionEnd,
    tie_word_embeddings: c.tieEmbeddings,
    text_config: {
      ...text,
      model_type: `${type}_text`,
      rope_parameters: {
        rope_type: 'default',
        rope_theta: c.ropeTheta,
        mrope_section: c.mropeSection,
        mrope_interleaved: true,
      },
    },
    vision_config: {
      model_type: `${type}_vision`,
      depth: v.depth,
      hidden_size: v.hiddenSize,
      num_heads: v.numHeads,
      intermediate_size: v.intermediateSize,
      out_hidden_size: v.outHiddenSize,
      hidden_act: 'gelu_pytorch_tanh',
      in_channels: v.inChannels,
      patch_size: v.patchSize,
      temporal_patch_size: v.temporalPatchSize,
      spatial_merge_size: v.spatialMergeSize,
      num_position_embeddings: v.positionSide ** 2,
      deepstack_visual_indexes: v.deepstackIndexes,
      initializer_range: 0.02,
    },
    torch_dtype: TORCH_DTYPE[dtype],
    dtype: TORCH_DTYPE[dtype],
  };
}

/** preprocessor_config.json of a Qwen3-VL model (transformers' Qwen2VLImageProcessor with Qwen3-VL's defaults). */
export function qwen3VlProcessorConfig(c: Qwen3Config): Record<string, unknown> {
  const v = c.vision!;
  return {
    image_processor_type: 'Qwen2VLImageProcessor',
    do_convert_rgb: true,
    do_resize: true,
    do_rescale: true,
    do_normalize: true,
    resample: 3,
    rescale_factor: 1 / 255,
    image_mean: [0.5, 0.5, 0.5],
    image_std: [0.5, 0.5, 0.5],
    patch_size: v.patchSize,
    temporal_patch_size: v.temporalPatchSize,
    merge_size: v.spatialMergeSize,
    size: { shortest_edge: 65536, longest_edge: 16777216 },
  };
}
