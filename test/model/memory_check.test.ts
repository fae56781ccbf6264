// The memory check before training: the parameter count from a config equals the engine's own
// count (dense and mixture-of-experts layers, tied or not), Qwen3-30B-A3B's count is its published
// 30.5B, and a model whose float32 training state exceeds the machine is refused with the numbers,
// also by `medix train`'s Trainer before it writes anything, as for the bundled 30B-A3B recipe.
import t from 'tap';
import { existsSync, mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';

import { Model, type Qwen3Config } from '../../src/engine/model.js';
import { MODEL_PRESETS } from '../../src/model/presets.js';
import { parseHfConfig } from '../../src/model/hf-config.js';
import { assertTrainingFits, hostTrainingNeed, parameterCount } from '../../src/model/memory-check.js';
import { loadTrainingConfig, parseTrainingConfig, resolveConfigPaths } from '../../src/config/index.js';
import { Trainer } from '../../src/train/trainer.js';
import { defaultTokenizerDir } from '../../src/tokenizer/index.js';
import { writeTinyTrainData } from '../helpers/tiny-train-data.js';

// Qwen3-VL-30B-A3B-Thinking's config (the values its config.json publishes), and the text-only
// Qwen3-30B-A3B of the same decoder, whose published size is 30.5B.
const vision30bA3b = {
  depth: 27,
  hidden_size: 1152,
  intermediate_size: 4304,
  num_heads: 16,
  out_hidden_size: 2048,
  patch_size: 16,
  spatial_merge_size: 2,
  temporal_patch_size: 2,
  num_position_embeddings: 2304,
  deepstack_visual_indexes: [8, 16, 24],
  hidden_act: 'gelu_pytorch_tanh',
  in_channels: 3,
};
const qwen3vl30bA3b = {
  vision_config: vision30bA3b,
  image_token_id: 151655,
  architectures: ['Qwen3VLMoeForConditionalGeneration'],
  model_type: 'qwen3_vl_moe',
  text_config: {
    vocab_size: 151936,
    hidden_size: 2048,
    intermediate_size: 6144,
    num_hidden_layers: 48,
    num_attention_heads: 32,
    num_key_value_heads: 4,
    head_dim: 128,
    num_experts: 128,
    num_experts_per_tok: 8,
    moe_intermediate_size: 768,
    decoder_sparse_step: 1,
    mlp_only_layers: [],
    norm_topk_prob: true,
    router_aux_loss_coef: 0.001,
    rms_norm_eps: 1e-6,
    rope_scaling: { rope_type: 'default', mrope_section: [24, 20, 20], mrope_interleaved: true },
    rope_theta: 5000000,
  },
  tie_word_embeddings: false,
};

t.test('parameterCount equals the engine count', async (t) => {
  const base: Qwen3Config = {
    vocabSize: 50,
    hiddenSize: 16,
    intermediateSize: 24,
    numLayers: 4,
    numHeads: 2,
    numKvHeads: 1,
    headDim: 8,
    ropeTheta: 1e4,
    rmsEps: 1e-6,
    tieEmbeddings: false,
  };
  for (const c of [
    base,
    { ...base, tieEmbeddings: true },
    { ...base, numExperts: 4, numExpertsPerTok: 2, moeIntermediateSize: 8, decoderSparseStep: 2, mlpOnlyLayers: [3] },
    { ...MODEL_PRESETS['tiny-moe'], vocabSize: 99 },
    {
      ...MODEL_PRESETS['tiny-vl'],
      vocabSize: 99,
      vision: { ...MODEL_PRESETS['tiny-vl'].vision, deepstackIndexes: [0] },
    },
  ])
    t.equal(parameterCount(c), Model.create(c, { initStd: 0 }).numParameters, JSON.stringify(c).slice(0, 80));
});

t.test('Qwen3-30B-A3B: 30.5B parameters, refused on a 128 GiB machine with the numbers', async (t) => {
  const { rope_scaling: _mrope, ...text } = qwen3vl30bA3b.text_config;
  const { config } = parseHfConfig({ ...text, model_type: 'qwen3_moe', tie_word_embeddings: false }, 'config.json');
  t.ok(Math.abs(parameterCount(config) / 1e9 - 30.53) < 0.01, `${parameterCount(config)} parameters`);
  t.throws(
    () => assertTrainingFits(config, 'models/30b', 128 * 2 ** 30),
    /models\/30b: this model has 30\.53B parameters; training it needs at least 455\.0 GiB .* but this machine has 128\.0 GiB/,
  );
  t.doesNotThrow(() => assertTrainingFits(config, 'models/30b', 512 * 2 ** 30), 'fits a 512 GiB machine');
  // On GPUs the state is on the devices: the host holds each local process's whole float32 weights while
  // loading (4 bytes a parameter, 113.7 GiB here).
  const gpus = (localRanks: number) => ({ device: 'cuda' as const, ranks: 8, localRanks, fullShard: true });
  t.doesNotThrow(() => assertTrainingFits(config, 'models/30b', 128 * 2 ** 30, gpus(1)), 'one GPU process a node');
  const P = parameterCount(config);
  const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1).replace('.', '\\.');
  t.throws(
    () => assertTrainingFits(config, 'models/30b', 512 * 2 ** 30, gpus(8)),
    new RegExp(
      `needs at least ${gib(8 * 4 * P)} GiB \\(float32 weights read whole before they go to the GPU, for each of ` +
        "this machine's 8 processes\\)",
    ),
  );
  // Fully sharded CPU processes on four machines: the load's whole weights and their host copy (8 bytes a
  // parameter) per process, less than one process's 16; data parallel keeps whole weights and gradients.
  const cpus = (fullShard: boolean) => ({ device: 'cpu' as const, ranks: 4, localRanks: 1, fullShard });
  t.doesNotThrow(() => assertTrainingFits(config, 'models/30b', 256 * 2 ** 30, cpus(true)), 'sharded over 4 hosts');
  t.throws(
    () => assertTrainingFits(config, 'models/30b', 256 * 2 ** 30, cpus(false)),
    new RegExp(`needs at least ${gib(10 * P)} GiB \\(float32 weights and gradients, and 1/4 of the AdamW moments\\)`),
  );
  t.equal(
    hostTrainingNeed(config, { ...cpus(true), localRanks: 4 }).bytes,
    4 * 8 * P,
    'four sharded processes on one host each read the whole weights',
  );
  const vl = parseHfConfig(qwen3vl30bA3b, 'config.json').config;
  t.ok(parameterCount(vl) > parameterCount(config), 'the VL model counts its vision tower as well');
});

t.test('the 30B-A3B DAPO recipe validates, and the trainer refuses the model before writing the run', async (t) => {
  const recipe = loadTrainingConfig(join(import.meta.dirname, '../../examples/medix_r1_30b_a3b_dapo.yaml'));
  t.ok(
    recipe.algorithm.online_filtering && !recipe.algorithm.use_kl_loss && recipe.worker.actor.clip_ratio_high === 0.28,
    'DAPO settings',
  );
  t.match(recipe.worker.actor.model.model_path, /Qwen3-VL-30B-A3B-Thinking$/);
  const root = mkdtempSync(join(tmpdir(), 'medix-fit-'));
  writeTinyTrainData(root);
  mkdirSync(join(root, 'model'));
  writeFileSync(join(root, 'model', 'config.json'), JSON.stringify(qwen3vl30bA3b));
  const raw = {
    data: { train_files: 'train.jsonl', max_prompt_length: 200, max_response_length: 8, rollout_batch_size: 2 },
    algorithm: { adv_estimator: 'grpo' },
    worker: {
      actor: { model: { model_path: 'model', tokenizer_path: defaultTokenizerDir() }, global_batch_size: 4 },
      rollout: { n: 2 },
    },
    trainer: { max_steps: 1, save_checkpoint_path: 'run' },
  };
  const cfg = resolveConfigPaths(parseTrainingConfig(raw, 'test'), root);
  if (totalmem() >= 455 * 2 ** 30) {
    t.comment(
      `skipped: this machine has ${(totalmem() / 2 ** 30).toFixed(0)} GiB, enough for the 30B-A3B training state`,
    );
    return;
  }
  await t.rejects(
    Trainer.create(cfg, { baseDir: root, log: () => {} }),
    /worker\.actor\.model\.model_path \S*model: this model has 3\d\.\d\dB parameters; training it needs at least 4\d\d\.\d GiB/,
  );
  t.notOk(existsSync(join(root, 'run', 'config.yaml')), 'nothing written to the run directory');
});
