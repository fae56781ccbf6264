// The training configuration schema: EasyR1's sections and key names (data, algorithm,
// worker.actor / worker.rollout / worker.ref / worker.reward, trainer) wherever the concept is the
// same, plus `sft` for the supervised warm-up. Every key has its default here; cross-key rules
// (batch sizes that must divide, filter bounds, estimators that need groups) are checked at the end
// with the offending key path. Where medix differs from EasyR1 the key's comment says so.
import { z } from 'zod';
import { LOGGERS } from '../train/loggers/types.js';
import { rewardConfigSchema } from '../reward/config.js';
import { REWARD_COMPONENTS } from '../reward/components.js';
import { ADVANTAGE_ESTIMATORS } from '../rl/advantages.js';
import { ADAMW_DEFAULTS } from '../engine/adamw-defaults.js';
import { COMPUTE_DTYPES } from '../engine/compute-dtype.js';
import { checkFsdpKeys, fsdpConfigSchema } from './fsdp-schema.js';

/** Where a model runs (checked at start-up by src/engine/device.ts). */
export const DEVICES = ['cpu', 'cuda'] as const;
export type Device = (typeof DEVICES)[number];

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().min(0);
const probability = z.number().gt(0).max(1);

/** A randomly initialised Qwen3 shape, for the quickstart and experiments without a checkpoint. */
const modelInitSchema = z
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
    seed: nonNegativeInt.default(0),
  })
  .strict();

export const dataConfigSchema = z
  .object({
    /** A .jsonl or .parquet file (Hugging Face datasets layout), relative to the config file. */
    train_files: z.string().min(1),
    val_files: z.string().min(1).optional(),
    prompt_key: z.string().min(1).default('problem'),
    /** The reference answer's column ("solution" in MediX data, "answer" in others). */
    answer_key: z.string().min(1).default('solution'),
    image_key: z.string().min(1).default('images'),
    /** Where relative image paths resolve (default: the data file's directory); paths may not leave it. */
    image_dir: z.string().optional(),
    /** Jinja template applied to the question before the chat template; `{{ content }}` is the question. */
    format_prompt: z.string().optional(),
    /** The same template read from a file (EasyR1's form); give at most one of the two. */
    format_prompt_path: z.string().optional(),
    /** A system message before the question (medix; EasyR1 puts such text in format_prompt). */
    system_prompt: z.string().optional(),
    max_prompt_length: positiveInt.default(1024),
    max_response_length: positiveInt.default(256),
    /** Prompts longer than max_prompt_length (after both templates) are dropped and counted. */
    filter_overlong_prompts: z.boolean().default(true),
    /** Prompts per RL step. */
    rollout_batch_size: positiveInt.default(8),
    /**
     * Prompts drawn per round while online filtering fills the batch (default: rollout_batch_size);
     * each round counts towards algorithm.max_try_make_batch, as in EasyR1. Only with online_filtering:
     * see checkRolloutRounds.
     */
    mini_rollout_batch_size: positiveInt.optional(),
    /** Validation rows: the first val_batch_size of val_files; -1 (the default): all of them, as the reference validates. */
    val_batch_size: z.union([positiveInt, z.literal(-1)]).default(-1),
    shuffle: z.boolean().default(true),
    seed: nonNegativeInt.default(1),
    /** Images are resized to keep width × height within [min_pixels, max_pixels], as Qwen-VL's processor. */
    min_pixels: positiveInt.default(262144),
    max_pixels: positiveInt.default(4194304),
    /** A row with a missing field, wrong type, unreadable image or bad UTF-8: skip it (counted) or stop. */
    on_bad_row: z.enum(['skip', 'stop']).default('skip'),
  })
  .strict();

export const algorithmConfigSchema = z
  .object({
    /** Discount of REINFORCE++ returns. */
    gamma: z.number().min(0).max(1).default(1),
    adv_estimator: z.enum(ADVANTAGE_ESTIMATORS).default('grpo'),
    norm_adv_by_std_in_grpo: z.boolean().default(true),
    /**
     * true: no reference model, so no KL anywhere (EasyR1's meaning). false: a reference model, KL
     * in the reward unless use_kl_loss. Absent (medix's default; EasyR1 defaults to false): a
     * reference only for use_kl_loss, so KL in the reward is opt-in. See klPlacement.
     */
    disable_kl: z.boolean().optional(),
    /** KL as a loss term (GRPO); false with disable_kl: false puts it in the reward instead. */
    use_kl_loss: z.boolean().default(false),
    /** The per-token KL estimator (EasyR1 spells k1 as "kl"). */
    kl_penalty: z.enum(['k1', 'abs', 'mse', 'low_var_kl']).default('low_var_kl'),
    /** β of the KL loss, or the KL-in-reward coefficient's starting value. */
    kl_coef: z.number().min(0).default(1e-2),
    /** The KL-in-reward coefficient's controller: fixed, or adaptive towards kl_target over kl_horizon responses. */
    kl_type: z.enum(['fixed', 'adaptive']).default('fixed'),
    kl_horizon: z.number().positive().default(10000),
    kl_target: z.number().positive().default(0.1),
    /** DAPO: drop prompt groups whose mean filter_key reward is <= filter_low or >= filter_high. */
    online_filtering: z.boolean().default(false),
    filter_key: z.enum(REWARD_COMPONENTS).default('overall'),
    filter_low: z.number().default(0.01),
    filter_high: z.number().default(0.99),
    /** Sampling rounds allowed to fill a filtered batch; <= 0: no limit (EasyR1 keeps this under trainer). */
    max_try_make_batch: z.number().int().default(20),
    /**
     * When max_try_make_batch rounds keep fewer than rollout_batch_size groups: 'error' stops the run,
     * as the reference does; 'train_on_kept' trains that step on the groups kept, with a warning.
     */
    on_unfilled_batch: z.enum(['error', 'train_on_kept']).default('error'),
    /** DAPO's soft overlong punishment (veRL: reward_model.overlong_buffer). */
    overlong_buffer: z
      .object({
        enable: z.boolean().default(false),
        len: positiveInt.default(64),
        penalty_factor: z.number().min(0).default(1),
      })
      .strict()
      .prefault({}),
  })
  .strict();

const optimConfigSchema = z
  .object({
    lr: z.number().positive().default(1e-6),
    betas: z
      .tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)])
      .default([ADAMW_DEFAULTS.beta1, ADAMW_DEFAULTS.beta2]),
    weight_decay: z.number().min(0).default(ADAMW_DEFAULTS.weightDecay),
    /** Warm-up steps; when absent, lr_warmup_ratio × the run's optimizer steps. */
    lr_warmup_steps: nonNegativeInt.optional(),
    lr_warmup_ratio: z.number().min(0).max(1).default(0),
    lr_scheduler_type: z.enum(['constant', 'cosine']).default('constant'),
    min_lr_ratio: z.number().min(0).max(1).default(0),
  })
  .strict();

export const actorConfigSchema = z
  .object({
    model: z
      .object({
        /** A Hugging Face Qwen3 / Qwen3-VL directory; or `init` for a random Qwen3 shape. */
        model_path: z.string().min(1).optional(),
        tokenizer_path: z.string().min(1).optional(),
        init: modelInitSchema.optional(),
        enable_gradient_checkpointing: z.boolean().default(false),
        /** Qwen3-VL: train the language model only; the vision tower gets no gradients and no updates. */
        freeze_vision_tower: z.boolean().default(false),
        /** Dtype of the matrix products (a compute copy of the f32 master weights, remade after each step). */
        dtype: z.enum(COMPUTE_DTYPES).default('f32'),
      })
      .strict(),
    /** Responses per optimizer step (EasyR1 counts prompts here); must divide rollout_batch_size × n. */
    global_batch_size: positiveInt.default(8),
    micro_batch_size_per_device_for_update: positiveInt.default(4),
    micro_batch_size_per_device_for_experience: positiveInt.default(16),
    ppo_epochs: positiveInt.default(1),
    max_grad_norm: z.number().min(0).default(1),
    /** ppo (EasyR1: "default"), gspo or cispo. */
    loss_type: z.enum(['ppo', 'gspo', 'cispo']).default('ppo'),
    loss_avg_mode: z.enum(['token', 'seq']).default('token'),
    clip_ratio_low: z.number().min(0).lt(1).default(0.2),
    clip_ratio_high: z.number().min(0).default(0.3),
    clip_ratio_dual: z.number().min(0).default(3),
    entropy_coef: z.number().default(0),
    optim: optimConfigSchema.prefault({}),
    /** Where the policy (and the reference, which follows it) trains: cpu, or cuda (src/engine/device.ts). */
    device: z.enum(DEVICES).default('cpu'),
    /** EasyR1's FSDP keys (src/config/fsdp-schema.ts). */
    fsdp: fsdpConfigSchema.prefault({}),
  })
  .strict();

const samplingKeys = {
  temperature: z.number().min(0),
  top_p: probability,
  /** <= 0: no top-k cut. */
  top_k: z.number().int(),
  n: positiveInt,
};

export const rolloutConfigSchema = z
  .object({
    n: samplingKeys.n.default(5),
    temperature: samplingKeys.temperature.default(1),
    top_p: samplingKeys.top_p.default(1),
    top_k: samplingKeys.top_k.default(-1),
    /**
     * Seed of all rollout sampling (training, validation, ReMax's greedy baselines; default:
     * trainer.seed). Each request's seed derives from it, the step and the prompt's place in the
     * step, so a run (and its resume) samples the same tokens whatever the timing.
     */
    seed: nonNegativeInt.optional(),
    /** Where the generation engine runs: cpu, or cuda (src/engine/device.ts). */
    device: z.enum(DEVICES).default('cpu'),
    /** Validation sampling (MediX-R1: temperature 0.6, top-p 0.95, n 1). */
    val_override_config: z
      .object({
        temperature: samplingKeys.temperature.default(0.6),
        top_p: samplingKeys.top_p.default(0.95),
        top_k: samplingKeys.top_k.default(-1),
        n: samplingKeys.n.default(1),
      })
      .strict()
      .prefault({}),
  })
  .strict();

/** The frozen reference policy of KL (loss or reward): a copy of the actor's weights at the start of RL. */
export const refConfigSchema = z
  .object({
    /** Samples per forward pass of the reference's log-probs; default: the actor's micro_batch_size_per_device_for_experience. */
    micro_batch_size_per_device_for_experience: positiveInt.optional(),
  })
  .strict();

export const sftConfigSchema = z
  .object({
    /** Supervised epochs on the reference answers before RL (0: none). */
    epochs: nonNegativeInt.default(0),
    /**
     * The warm-up's rows, read as data.train_files is (default: data.train_files): e.g. worked answers
     * apart from the RL prompts, since on rows the warm-up has learnt by heart RL's groups tend to score
     * alike, and online filtering drops those.
     */
    train_files: z.string().min(1).optional(),
    lr: z.number().positive().default(1e-4),
    /** cosine: lr decays over the warm-up's optimizer steps to min_lr_ratio·lr (as the actor's optim). */
    lr_scheduler_type: z.enum(['constant', 'cosine']).default('constant'),
    min_lr_ratio: z.number().min(0).max(1).default(0),
    batch_size: positiveInt.default(8),
    /** Jinja template of the target response; variables: tag (e.g. "<X_RAY>"), answer. */
    response_template: z
      .string()
      .default('{{ tag }}<thinking>The findings point to {{ answer }}.</thinking><answer>{{ answer }}</answer>'),
  })
  .strict();

export const trainerConfigSchema = z
  .object({
    total_epochs: positiveInt.default(1),
    /** When set, the run stops here even before total_epochs. */
    max_steps: positiveInt.optional(),
    /** Validate every N steps on val_files (-1: never). */
    val_freq: z.number().int().min(-1).default(-1),
    /** Validate once before any training (SFT included), logged as step 0; a resumed run does not repeat it. */
    val_before_train: z.boolean().default(true),
    /** Save a checkpoint every N steps (-1: only at the end). */
    save_freq: z.number().int().min(-1).default(-1),
    /** Checkpoints kept (EasyR1: -1 keeps all; here 0 keeps all). */
    save_limit: nonNegativeInt.default(2),
    /** The run directory: metrics.jsonl, samples.jsonl, checkpoints/, report.html, summary.json. */
    save_checkpoint_path: z.string().default('runs/default'),
    /** Resume from this checkpoint instead of the run directory's newest. */
    load_checkpoint_path: z.string().optional(),
    log_samples_every: nonNegativeInt.default(1),
    seed: nonNegativeInt.default(1),
    /** CPU threads of the engine (0: all cores). */
    threads: nonNegativeInt.default(0),
    /** Metrics backends (EasyR1's names); console and file (metrics.jsonl) are always on. See src/train/loggers/. */
    logger: z.array(z.enum(LOGGERS)).default(['console', 'file']),
    /** The MLflow experiment and the W&B project. */
    project_name: z.string().min(1).default('medix'),
    /** The MLflow / W&B run name (default: the run directory's name). */
    experiment_name: z.string().min(1).optional(),
  })
  .strict();

/**
 * Where KL against the reference policy goes: a loss term (use_kl_loss), the token rewards
 * (disable_kl: false without use_kl_loss), or nowhere (no reference model).
 */
export function klPlacement(a: Pick<AlgorithmConfig, 'disable_kl' | 'use_kl_loss'>): 'loss' | 'reward' | 'off' {
  if (a.use_kl_loss) return 'loss';
  return a.disable_kl === false ? 'reward' : 'off';
}

export const trainingConfigSchema = z
  .object({
    data: dataConfigSchema,
    algorithm: algorithmConfigSchema.prefault({}),
    worker: z
      .object({
        actor: actorConfigSchema,
        rollout: rolloutConfigSchema.prefault({}),
        ref: refConfigSchema.prefault({}),
        reward: rewardConfigSchema.prefault({}),
      })
      .strict(),
    sft: sftConfigSchema.prefault({}),
    trainer: trainerConfigSchema.prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    const fail = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const { actor, rollout } = c.worker;
    if ((actor.model.model_path === undefined) === (actor.model.init === undefined))
      fail(['worker', 'actor', 'model'], 'give exactly one of model_path and init');
    if (c.data.format_prompt !== undefined && c.data.format_prompt_path !== undefined)
      fail(['data', 'format_prompt_path'], 'give at most one of format_prompt and format_prompt_path');
    if (c.data.min_pixels > c.data.max_pixels)
      fail(['data', 'min_pixels'], `must be <= data.max_pixels (${c.data.max_pixels})`);
    const responses = c.data.rollout_batch_size * rollout.n;
    if (responses % actor.global_batch_size !== 0) {
      fail(
        ['worker', 'actor', 'global_batch_size'],
        `must divide data.rollout_batch_size × worker.rollout.n = ${responses} (responses per step)`,
      );
    }
    if (rollout.device !== actor.device) {
      // The rollouts are generated by the policy itself, in its own memory.
      fail(
        ['worker', 'rollout', 'device'],
        `must equal worker.actor.device (${actor.device}): rollouts run on the policy`,
      );
    }
    if (actor.global_batch_size % actor.micro_batch_size_per_device_for_update !== 0) {
      fail(
        ['worker', 'actor', 'micro_batch_size_per_device_for_update'],
        `must divide worker.actor.global_batch_size = ${actor.global_batch_size}`,
      );
    }
    const grouped = ['grpo', 'grpo_passk', 'rloo'];
    if (grouped.includes(c.algorithm.adv_estimator) && rollout.n < 2) {
      fail(
        ['worker', 'rollout', 'n'],
        `adv_estimator ${c.algorithm.adv_estimator} compares responses to the same prompt: n must be >= 2`,
      );
    }
    checkKlKeys(c, fail);
    checkFsdpKeys(actor.fsdp, fail);
    checkRolloutRounds(c, fail);
    if (c.algorithm.filter_low >= c.algorithm.filter_high)
      fail(['algorithm', 'filter_low'], `must be < algorithm.filter_high (${c.algorithm.filter_high})`);
    if (c.algorithm.overlong_buffer.enable && c.algorithm.overlong_buffer.len > c.data.max_response_length) {
      fail(
        ['algorithm', 'overlong_buffer', 'len'],
        `must be <= data.max_response_length (${c.data.max_response_length})`,
      );
    }
  });

/** KL settings that contradict each other, or keys that would do nothing with the others. */
function checkKlKeys(c: z.infer<typeof trainingConfigSchema>, fail: (path: string[], message: string) => void): void {
  const a = c.algorithm;
  const where = klPlacement(a);
  if (a.use_kl_loss && a.disable_kl === true)
    fail(
      ['algorithm', 'use_kl_loss'],
      'the KL loss needs the reference model, which algorithm.disable_kl: true turns off; remove one of the two',
    );
  if (a.kl_type === 'adaptive') {
    if (where !== 'reward')
      fail(
        ['algorithm', 'kl_type'],
        `'adaptive' steers the coefficient of KL in the reward, which needs algorithm.disable_kl: false and algorithm.use_kl_loss: false${where === 'loss' ? ' (the KL loss uses the fixed algorithm.kl_coef)' : ''}`,
      );
    else if (a.kl_coef === 0)
      fail(
        ['algorithm', 'kl_coef'],
        "must be > 0 with algorithm.kl_type 'adaptive': the controller multiplies it, so 0 stays 0",
      );
  }
  if (where === 'off' && c.worker.ref.micro_batch_size_per_device_for_experience !== undefined)
    fail(
      ['worker', 'ref', 'micro_batch_size_per_device_for_experience'],
      'this run has no reference model (KL is off); set algorithm.disable_kl: false or algorithm.use_kl_loss: true, or remove the key',
    );
}

/**
 * mini_rollout_batch_size without online filtering would only split the batch's generation into
 * chunks with the same samples (request seeds do not depend on rounds). In EasyR1 that bounds the
 * memory of a generation call; here the engine's KV cache is allocated up front and requests wait
 * until they fit, so chunks would bound neither memory nor latency: the key would do nothing.
 */
function checkRolloutRounds(
  c: z.infer<typeof trainingConfigSchema>,
  fail: (path: string[], message: string) => void,
): void {
  if (c.data.mini_rollout_batch_size !== undefined && !c.algorithm.online_filtering)
    fail(
      ['data', 'mini_rollout_batch_size'],
      "sets the prompts drawn per round while algorithm.online_filtering refills a batch, and this run does not filter; without filtering, smaller rounds would change nothing (the generation engine's cache is allocated once and requests queue until they fit); remove the key",
    );
}

export type TrainingConfig = z.infer<typeof trainingConfigSchema>;
export type DataConfig = TrainingConfig['data'];
export type AlgorithmConfig = TrainingConfig['algorithm'];
export type ActorConfig = TrainingConfig['worker']['actor'];
export type RolloutConfig = TrainingConfig['worker']['rollout'];
export type RefConfig = TrainingConfig['worker']['ref'];
export type SftConfig = TrainingConfig['sft'];
export type TrainerConfig = TrainingConfig['trainer'];
