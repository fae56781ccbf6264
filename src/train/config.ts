// The training configuration: EasyR1's sections and key names (data, algorithm, worker.actor,
// worker.rollout, worker.reward, trainer) wherever the concept is the same, plus `sft` for the
// warm-up. YAML in, dotted key=value overrides on top, validated by a zod schema whose errors name
// the key path and the allowed values; the resolved config is saved with each run.
import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { z } from 'zod';
import { rewardConfigSchema } from '../reward/config.js';

const positiveInt = z.number().int().positive();

const modelInit = z
  .object({
    hidden_size: positiveInt,
    intermediate_size: positiveInt,
    num_hidden_layers: positiveInt,
    num_attention_heads: positiveInt,
    num_key_value_heads: positiveInt,
    head_dim: positiveInt,
    rope_theta: z.number().positive().default(1e6),
    rms_norm_eps: z.number().positive().default(1e-6),
    tie_word_embeddings: z.boolean().default(true),
    /** Default: the tokenizer's size, so every id the model can sample decodes. */
    vocab_size: positiveInt.optional(),
    seed: z.number().int().min(0).default(0),
  })
  .strict();

export const trainConfigSchema = z
  .object({
    data: z
      .object({
        train_files: z.string(),
        val_files: z.string().optional(),
        prompt_key: z.string().default('problem'),
        answer_key: z.string().default('solution'),
        image_key: z.string().default('images'),
        /** Jinja template applied to the question before the chat template ({{ content }} is the question). */
        format_prompt: z.string().optional(),
        system_prompt: z.string().optional(),
        max_prompt_length: positiveInt.default(1024),
        max_response_length: positiveInt.default(256),
        rollout_batch_size: positiveInt.default(8),
        val_batch_size: positiveInt.default(64),
        shuffle: z.boolean().default(true),
        seed: z.number().int().min(0).default(1),
        on_bad_row: z.enum(['skip', 'stop']).default('skip'),
      })
      .strict(),
    algorithm: z
      .object({
        // remax needs a greedy rollout per prompt as its baseline, which the loop does not generate yet.
        adv_estimator: z.enum(['grpo', 'grpo_passk', 'rloo', 'reinforce_plus_plus']).default('grpo'),
        norm_adv_by_std_in_grpo: z.boolean().default(true),
        use_kl_loss: z.boolean().default(false),
        kl_coef: z.number().min(0).default(1e-2),
        kl_type: z.enum(['k1', 'abs', 'mse', 'low_var_kl']).default('low_var_kl'),
        online_filtering: z.boolean().default(false),
        filter_key: z.enum(['overall', 'format', 'accuracy_llm', 'accuracy_embed', 'modality']).default('overall'),
        filter_low: z.number().default(0.01),
        filter_high: z.number().default(0.99),
        max_try_make_batch: positiveInt.default(20),
      })
      .strict()
      .prefault({}),
    worker: z
      .object({
        actor: z
          .object({
            model: z
              .object({
                /** A Hugging Face model directory; or `init` for a randomly initialised Qwen3 (quickstart, tests). */
                model_path: z.string().optional(),
                tokenizer_path: z.string().optional(),
                init: modelInit.optional(),
                enable_gradient_checkpointing: z.boolean().default(false),
              })
              .strict()
              .refine((m) => (m.model_path === undefined) !== (m.init === undefined), { message: 'give exactly one of model_path and init' }),
            global_batch_size: positiveInt.default(16),
            micro_batch_size_per_device_for_update: positiveInt.default(4),
            micro_batch_size_per_device_for_experience: positiveInt.default(16),
            ppo_epochs: positiveInt.default(1),
            max_grad_norm: z.number().min(0).default(1),
            loss_type: z.enum(['ppo', 'gspo', 'cispo']).default('ppo'),
            loss_avg_mode: z.enum(['token', 'seq']).default('token'),
            clip_ratio_low: z.number().min(0).max(1).default(0.2),
            clip_ratio_high: z.number().min(0).default(0.3),
            clip_ratio_dual: z.number().min(0).default(3),
            entropy_coef: z.number().default(0),
            optim: z
              .object({
                lr: z.number().positive().default(1e-6),
                betas: z.tuple([z.number(), z.number()]).default([0.9, 0.999]),
                weight_decay: z.number().min(0).default(1e-2),
                lr_warmup_steps: z.number().int().min(0).default(0),
                lr_scheduler_type: z.enum(['constant', 'cosine']).default('constant'),
                min_lr_ratio: z.number().min(0).max(1).default(0),
              })
              .strict()
              .prefault({}),
          })
          .strict(),
        rollout: z
          .object({
            n: positiveInt.default(5),
            temperature: z.number().min(0).default(1),
            top_p: z.number().gt(0).max(1).default(1),
            top_k: z.number().int().default(-1),
            val_override_config: z
              .object({ temperature: z.number().min(0).default(0.6), top_p: z.number().gt(0).max(1).default(0.95), n: positiveInt.default(1) })
              .strict()
              .prefault({}),
          })
          .strict()
          .prefault({}),
        reward: rewardConfigSchema.prefault({}),
      })
      .strict(),
    /** Supervised warm-up on the reference answers, before RL (0 epochs: none). */
    sft: z
      .object({
        epochs: z.number().int().min(0).default(0),
        lr: z.number().positive().default(1e-4),
        batch_size: positiveInt.default(8),
        /** Jinja template of the target response; variables: tag (e.g. "<X_RAY>"), answer. */
        response_template: z.string().default('{{ tag }}<thinking>The findings point to {{ answer }}.</thinking><answer>{{ answer }}</answer>'),
      })
      .strict()
      .prefault({}),
    trainer: z
      .object({
        total_epochs: positiveInt.default(1),
        max_steps: positiveInt.optional(),
        val_freq: z.number().int().default(-1),
        save_freq: z.number().int().default(-1),
        save_limit: z.number().int().min(0).default(2),
        /** The run directory: metrics.jsonl, samples.jsonl, checkpoints/, report.html, summary.json. */
        save_checkpoint_path: z.string().default('runs/default'),
        val_before_train: z.boolean().default(true),
        log_samples_every: z.number().int().min(0).default(1),
        seed: z.number().int().min(0).default(1),
        threads: z.number().int().min(0).default(0),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export type TrainConfig = z.infer<typeof trainConfigSchema>;

export class TrainConfigError extends Error {
  override name = 'TrainConfigError';
}

/** Sets a dotted key to a value parsed as YAML (so 1e-6, true, [1,2] and strings all work). */
export function applyOverride(raw: Record<string, unknown>, assignment: string): void {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new TrainConfigError(`override '${assignment}': expected key.path=value`);
  const path = assignment.slice(0, eq).split('.');
  let node: Record<string, unknown> = raw;
  for (const k of path.slice(0, -1)) {
    if (typeof node[k] !== 'object' || node[k] === null) node[k] = {};
    node = node[k] as Record<string, unknown>;
  }
  node[path.at(-1)!] = parseYaml(assignment.slice(eq + 1));
}

export function parseTrainConfig(raw: unknown, where: string): TrainConfig {
  const r = trainConfigSchema.safeParse(raw);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new TrainConfigError(`${where}: ${issue.path.join('.') || '(root)'}: ${issue.message}`);
}

export function loadTrainConfig(file: string, overrides: string[] = []): TrainConfig {
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new TrainConfigError(`${file}: cannot read YAML (${(e as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null) throw new TrainConfigError(`${file}: expected a mapping at the top level`);
  for (const o of overrides) applyOverride(raw as Record<string, unknown>, o);
  return parseTrainConfig(raw, file);
}

export function configToYaml(c: TrainConfig): string {
  return toYaml(c);
}
