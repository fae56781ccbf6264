// Hugging Face Qwen3-VL vision_config -> the engine's VisionTowerConfig; anything the tower does not
// implement is refused with the file and the field named.
import type { VisionTowerConfig } from '../engine/vision.js';

export class VisionConfigError extends Error {}

/** The tower's shape from a Qwen3-VL config.json's vision_config; names the field that is missing. */
export function visionConfigFromHf(v: Record<string, unknown>, where: string): VisionTowerConfig {
  const int = (key: string): number => {
    const x = v[key];
    if (typeof x !== 'number' || !Number.isInteger(x) || x < 1)
      throw new VisionConfigError(
        `${where}: vision_config.${key} must be a positive integer, got ${JSON.stringify(x)}`,
      );
    return x;
  };
  const side = Math.round(Math.sqrt(int('num_position_embeddings')));
  if (side * side !== v.num_position_embeddings)
    throw new VisionConfigError(
      `${where}: vision_config.num_position_embeddings must be a square, got ${v.num_position_embeddings}`,
    );
  const act = v.hidden_act ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh')
    throw new VisionConfigError(
      `${where}: vision_config.hidden_act ${JSON.stringify(act)} is not supported (gelu_pytorch_tanh)`,
    );
  const ds = v.deepstack_visual_indexes ?? [];
  if (!Array.isArray(ds) || !ds.every((i) => Number.isInteger(i)))
    throw new VisionConfigError(`${where}: vision_config.deepstack_visual_indexes must be an array of integers`);
  const rope = (v.rope_parameters ?? {}) as Record<string, unknown>;
  return {
    depth: int('depth'),
    hiddenSize: int('hidden_size'),
    numHeads: int('num_heads'),
    intermediateSize: int('intermediate_size'),
    outHiddenSize: int('out_hidden_size'),
    inChannels: int('in_channels'),
    temporalPatchSize: int('temporal_patch_size'),
    patchSize: int('patch_size'),
    spatialMergeSize: int('spatial_merge_size'),
    positionSide: side,
    deepstackIndexes: ds as number[],
    ropeTheta: typeof rope.rope_theta === 'number' ? rope.rope_theta : 10000,
  };
}
