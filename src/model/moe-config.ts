// The mixture-of-experts fields of a Hugging Face qwen3_moe / qwen3_vl_moe text config -> engine
// Qwen3Config fields. transformers 4 spells the expert count num_experts, transformers 5
// num_local_experts; both are read. Bad values are refused naming the file and the field.
import type { Qwen3Config } from '../engine/model.js';
import { ConfigError } from './hf-config.js';

type Json = Record<string, unknown>;

export type MoeFields = Pick<
  Qwen3Config,
  | 'numExperts'
  | 'numExpertsPerTok'
  | 'moeIntermediateSize'
  | 'decoderSparseStep'
  | 'mlpOnlyLayers'
  | 'normTopkProb'
  | 'routerAuxLossCoef'
>;

/** alwaysNormTopk: the architecture renormalises whatever the config says (Qwen3-VL-MoE's router does). */
export function moeFields(c: Json, file: string, path: string, numLayers: number, alwaysNormTopk = false): MoeFields {
  const int = (key: string, value: unknown, min: number): number => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min)
      throw new ConfigError(`${file}: ${path}${key} must be an integer >= ${min}, got ${JSON.stringify(value)}`);
    return value;
  };
  const expertsKey = c.num_local_experts !== undefined ? 'num_local_experts' : 'num_experts';
  const numExperts = int(expertsKey, c[expertsKey], 1);
  const numExpertsPerTok = int('num_experts_per_tok', c.num_experts_per_tok, 1);
  if (numExpertsPerTok > numExperts)
    throw new ConfigError(
      `${file}: ${path}num_experts_per_tok = ${numExpertsPerTok} exceeds ${expertsKey} = ${numExperts}`,
    );
  const only = c.mlp_only_layers ?? [];
  if (!Array.isArray(only)) throw new ConfigError(`${file}: ${path}mlp_only_layers must be a list of layer indices`);
  only.forEach((l, i) => {
    if (int(`mlp_only_layers[${i}]`, l, 0) >= numLayers)
      throw new ConfigError(
        `${file}: ${path}mlp_only_layers[${i}] = ${l} is not a layer (num_hidden_layers = ${numLayers})`,
      );
  });
  const coef = c.router_aux_loss_coef ?? 0.001;
  if (typeof coef !== 'number' || !(coef >= 0))
    throw new ConfigError(`${file}: ${path}router_aux_loss_coef must be a number >= 0`);
  if (c.norm_topk_prob !== undefined && typeof c.norm_topk_prob !== 'boolean')
    throw new ConfigError(`${file}: ${path}norm_topk_prob must be true or false`);
  return {
    numExperts,
    numExpertsPerTok,
    moeIntermediateSize: int('moe_intermediate_size', c.moe_intermediate_size, 1),
    decoderSparseStep: int('decoder_sparse_step', c.decoder_sparse_step ?? 1, 1),
    mlpOnlyLayers: only as number[],
    // transformers' Qwen3MoeConfig defaults to false.
    normTopkProb: alwaysNormTopk || ((c.norm_topk_prob as boolean | undefined) ?? false),
    routerAuxLossCoef: coef,
  };
}
