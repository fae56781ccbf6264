// Configuration of the composite reward, with the method's defaults. Every weight, tag, threshold
// and policy is a key; validation errors name the key path.
import { z } from 'zod';

/** "path/to/module.ts:score" -> "score" (the module path may itself contain ':' on Windows). */
export function customFunctionName(spec: string): string {
  return spec.slice(spec.lastIndexOf(':') + 1);
}

export const rewardConfigSchema = z
  .object({
    /** Weight of format; the rest (1 - format) is the content share. */
    format_weight: z.number().min(0).max(1).default(0.1),
    /** Split of the content share; they must add up to 1. */
    accuracy_llm_weight: z.number().min(0).max(1).default(0.575),
    accuracy_embed_weight: z.number().min(0).max(1).default(0.375),
    modality_weight: z.number().min(0).max(1).default(0.05),
    think_tag: z
      .string()
      .regex(/^[A-Za-z_][\w-]*$/)
      .default('thinking'),
    answer_tag: z
      .string()
      .regex(/^[A-Za-z_][\w-]*$/)
      .default('answer'),
    /** Embedding similarity at or above this scores 1 (binary signal, as the method). */
    embed_threshold: z.number().min(-1).max(1).default(0.8),
    /** When a component cannot be computed: renormalise over the rest, or drop the sample from the update. */
    on_unavailable: z.enum(['renormalize', 'drop']).default('renormalize'),
    judge: z
      .object({
        base_url: z.string().url(),
        model: z.string().min(1),
        /** Name of the environment variable holding the API key. */
        api_key_env: z.string().default('MEDIX_JUDGE_API_KEY'),
        concurrency: z.number().int().min(1).default(32),
        timeout_s: z.number().positive().default(60),
        max_attempts: z.number().int().min(1).default(4),
        /** Training stops with an error when the judge has not answered for this long. */
        max_outage_s: z.number().positive().default(600),
        max_prediction_chars: z.number().int().min(16).default(512),
        cache_file: z.string().optional(),
      })
      .strict()
      .optional(),
    /**
     * Sentence-embedding model for accuracy_embed (ONNX export + its tokenizer.json; paths relative
     * to the config file). Without it a character-trigram cosine stands in, with a warning.
     */
    embedding: z
      .object({
        model: z.string().min(1),
        tokenizer: z.string().min(1),
        /** BGE and MedEmbed use the [CLS] vector; most sentence-transformers models use the mean. */
        pooling: z.enum(['cls', 'mean']).default('cls'),
        normalize: z.boolean().default(true),
        batch_size: z.number().int().min(1).default(32),
        max_length: z.number().int().min(2).default(512),
        /** Output to read (default last_hidden_state, else the first output). */
        output: z.string().optional(),
        /** onnxruntime threads per worker. */
        threads: z.number().int().min(1).default(1),
      })
      .strict()
      .optional(),
    /** Piscina worker threads computing the rule, embedding and custom components; 0 scores on the calling thread. */
    workers: z.number().int().min(0).default(1),
    /** User reward modules: "path/to/module.ts:functionName" with their weight in the overall. */
    custom: z
      .array(
        z.object({
          function: z.string().regex(/^.+:[A-Za-z_$][\w$]*$/, 'expected path:functionName'),
          weight: z.number().min(0),
        }),
      )
      .default([]),
    /** EasyR1's reward hook "path/to/module.ts:functionName" (see reward-function.ts). */
    reward_function: z
      .string()
      .regex(/^.+:[A-Za-z_$][\w$]*$/, 'expected path:functionName')
      .optional(),
    /** Passed to reward_function as its second argument. */
    reward_function_kwargs: z.record(z.string(), z.unknown()).default({}),
    /** EasyR1's forms: batch (one call per prompt's group of responses) or sequential (one call per response). */
    reward_type: z.enum(['batch', 'sequential']).default('batch'),
    /** replace: reward_function's overall is the reward; add: it is added to the composite's overall. */
    reward_function_mode: z.enum(['replace', 'add']).default('replace'),
  })
  .strict()
  .refine((c) => new Set(c.custom.map((f) => customFunctionName(f.function))).size === c.custom.length, {
    message: 'custom reward functions must have distinct names (results are reported by function name)',
    path: ['custom'],
  })
  .refine((c) => Math.abs(c.accuracy_llm_weight + c.accuracy_embed_weight + c.modality_weight - 1) < 1e-6, {
    message: 'accuracy_llm_weight + accuracy_embed_weight + modality_weight must add up to 1',
    path: ['accuracy_llm_weight'],
  });

export type RewardConfig = z.infer<typeof rewardConfigSchema>;

export class RewardConfigError extends Error {
  override name = 'RewardConfigError';
}

export function parseRewardConfig(raw: unknown, where = 'reward config'): RewardConfig {
  const r = rewardConfigSchema.safeParse(raw ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new RewardConfigError(`${where}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return r.data;
}
