// The training config: EasyR1-shaped YAML with defaults, typed dotted overrides, errors that name
// the key path and the allowed values, and a YAML round trip of the resolved config.
import t from 'tap';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  TrainingConfigError,
  klPlacement,
  loadTrainingConfig,
  parseTrainingConfig,
  trainingConfigToYaml,
} from '../../src/config/index.js';

const dir = mkdtempSync(join(tmpdir(), 'medix-config-'));
const minimal = `
data:
  train_files: data/train.parquet
worker:
  actor:
    model:
      model_path: /models/Qwen3-VL-2B-Instruct
`;
const file = join(dir, 'minimal.yaml');
writeFileSync(file, minimal);

const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    if (e instanceof TrainingConfigError) return e.message;
    throw e;
  }
  throw new Error('expected a TrainingConfigError');
};

t.test('a minimal file gets every default and absolute paths', async (t) => {
  const c = loadTrainingConfig(file);
  t.equal(c.data.train_files, join(dir, 'data/train.parquet'), 'relative to the config file');
  t.equal(c.worker.actor.model.model_path, '/models/Qwen3-VL-2B-Instruct', 'absolute stays');
  t.equal(c.data.prompt_key, 'problem');
  t.equal(c.data.answer_key, 'solution');
  t.equal(c.data.on_bad_row, 'skip');
  t.equal(c.algorithm.adv_estimator, 'grpo');
  t.equal(c.worker.rollout.val_override_config.temperature, 0.6);
  t.equal(c.worker.reward.format_weight, 0.1, "the reward section is the reward's own schema");
  t.equal(c.trainer.save_checkpoint_path, join(dir, 'runs/default'));
});

t.test('defaults as the reference: the whole validation split, an unfilled batch is an error', async (t) => {
  const c = loadTrainingConfig(file);
  t.equal(c.data.val_batch_size, -1, 'data.val_batch_size: -1, every validation row');
  t.equal(c.algorithm.on_unfilled_batch, 'error');
  t.equal(loadTrainingConfig(file, ['data.val_batch_size=5']).data.val_batch_size, 5);
  t.equal(
    loadTrainingConfig(file, ['algorithm.on_unfilled_batch=train_on_kept']).algorithm.on_unfilled_batch,
    'train_on_kept',
  );
  t.throws(() => loadTrainingConfig(file, ['data.val_batch_size=0']), /data\.val_batch_size/);
  t.throws(
    () => loadTrainingConfig(file, ['algorithm.on_unfilled_batch=skip']),
    /algorithm\.on_unfilled_batch: 'skip' is not allowed; allowed: error, train_on_kept/,
  );
});

t.test('the bundled examples validate', async (t) => {
  const examples = join(import.meta.dirname, '../../examples');
  // reward.yaml is `medix reward`'s config (its own test checks it); every other YAML is a training config.
  const yamls = readdirSync(examples).filter((f) => f.endsWith('.yaml') && f !== 'reward.yaml');
  t.ok(
    yamls.includes('quickstart.yaml') &&
      yamls.includes('medix_r1_8b_grpo.yaml') &&
      yamls.includes('medix_r1_2b_dapo.yaml'),
  );
  for (const y of yamls) {
    t.doesNotThrow(() => loadTrainingConfig(join(examples, y)), y);
  }
  const grpo = loadTrainingConfig(join(examples, 'medix_r1_8b_grpo.yaml'));
  t.ok(
    grpo.algorithm.use_kl_loss && grpo.algorithm.kl_penalty === 'low_var_kl' && grpo.algorithm.kl_coef === 1e-2,
    'GRPO: low_var_kl loss, 1e-2',
  );
  const dapo = loadTrainingConfig(join(examples, 'medix_r1_8b_dapo.yaml'));
  t.ok(
    dapo.algorithm.online_filtering && !dapo.algorithm.use_kl_loss && dapo.worker.actor.clip_ratio_high === 0.28,
    'DAPO: filtering, no KL, clip-higher',
  );
  t.equal(
    grpo.worker.actor.clip_ratio_high,
    0.3,
    "GRPO: clip_ratio_high 0.3, EasyR1's default the reference runs with",
  );
  for (const y of ['medix_r1_2b_dapo.yaml', 'medix_r1_8b_dapo.yaml', 'medix_r1_30b_a3b_dapo.yaml']) {
    const c = loadTrainingConfig(join(examples, y));
    t.equal(c.data.mini_rollout_batch_size, 128, `${y}: filtering rounds of 128 prompts`);
    t.equal(
      c.algorithm.on_unfilled_batch,
      'error',
      `${y}: a batch filtering cannot fill stops the run, as the reference`,
    );
  }
  for (const y of yamls)
    t.equal(loadTrainingConfig(join(examples, y)).data.val_batch_size, -1, `${y}: validates on the whole split`);
});

t.test('overrides are typed by the schema', async (t) => {
  const c = loadTrainingConfig(file, [
    'worker.rollout.n=8',
    'worker.actor.optim.lr=1e-6',
    'data.shuffle=false',
    'worker.actor.optim.betas=[0.8, 0.95]',
    'worker.rollout.val_override_config={"n": 4, "temperature": 0}',
    'trainer.save_checkpoint_path=007',
    'algorithm.adv_estimator=rloo',
    'data.val_files=data/val.jsonl',
    'sft.train_files=data/sft.jsonl',
  ]);
  t.equal(c.worker.rollout.n, 8);
  t.equal(c.worker.actor.optim.lr, 1e-6);
  t.equal(c.data.shuffle, false);
  t.same(c.worker.actor.optim.betas, [0.8, 0.95]);
  t.same(
    c.worker.rollout.val_override_config,
    { n: 4, temperature: 0, top_p: 0.95, top_k: -1 },
    'a mapping merges with defaults',
  );
  t.equal(c.trainer.save_checkpoint_path, join(dir, '007'), 'a string key keeps digits as text');
  t.equal(c.algorithm.adv_estimator, 'rloo');
  t.equal(c.data.val_files, join(dir, 'data/val.jsonl'));
  t.equal(c.sft.train_files, join(dir, 'data/sft.jsonl'), "the warm-up's rows resolve as the data's do");
  t.equal(loadTrainingConfig(file).sft.train_files, undefined, 'unset: the warm-up trains on data.train_files');
  t.same(
    loadTrainingConfig(file, ['worker.actor.optim.betas=0.5,0.6']).worker.actor.optim.betas,
    [0.5, 0.6],
    'a bare comma list',
  );
  const swapped = loadTrainingConfig(file, [
    'worker.actor.model.model_path=null',
    'worker.actor.model.init={hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 4}',
  ]);
  t.equal(swapped.worker.actor.model.model_path, undefined, 'null removes an optional key');
  t.throws(
    () => loadTrainingConfig(file, ['data.train_files=null']),
    /override 'data\.train_files=null': data\.train_files is required: null cannot remove it/,
    'and is refused for a required one (it became a file named null)',
  );
  t.equal(swapped.worker.actor.model.init?.hidden_size, 8);
});

t.test('override errors name the key and what is allowed', async (t) => {
  t.match(
    errorOf(() => loadTrainingConfig(file, ['data.shufle=true'])),
    /override 'data.shufle=true': data: unknown key 'shufle' \(did you mean 'shuffle'\?\); allowed: train_files, .*shuffle/,
  );
  t.match(
    errorOf(() => loadTrainingConfig(file, ['worker.rollout.n=many'])),
    /override 'worker.rollout.n=many': expected a number, got 'many'/,
  );
  t.match(
    errorOf(() => loadTrainingConfig(file, ['data.shuffle=yes'])),
    /expected true or false, got 'yes'/,
  );
  t.match(
    errorOf(() => loadTrainingConfig(file, ['data.seed.x=1'])),
    /data.seed takes a single value/,
  );
  t.match(
    errorOf(() => loadTrainingConfig(file, ['novalue'])),
    /expected key.path=value/,
  );
  t.match(
    errorOf(() => loadTrainingConfig(file, ['algorithm.kl_penalty=kl'])),
    /algorithm.kl_penalty: 'kl' is not allowed; allowed: k1, abs, mse, low_var_kl/,
  );
});

t.test('file errors name the file, the key path and the allowed values', async (t) => {
  const bad = (yaml: string) => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, yaml);
    return errorOf(() => loadTrainingConfig(f));
  };
  const m = bad(`${minimal}algorithm:\n  adv_estimator: ppo\n  filter_lo: 0.1\n`);
  t.match(m, /bad\.yaml: invalid training config/);
  t.match(
    m,
    /algorithm\.adv_estimator: 'ppo' is not allowed; allowed: grpo, grpo_passk, rloo, remax, reinforce_plus_plus/,
  );
  t.match(
    m,
    /algorithm\.filter_lo: unknown key 'filter_lo' \(did you mean 'filter_low'\?\)/,
    'every problem is listed',
  );
  t.match(bad('worker:\n  actor:\n    model:\n      model_path: /m\n'), /data: required/);
  t.match(bad(`${minimal}trainer:\n  save_freq: often\n`), /trainer\.save_freq: expected number, got 'often'/);
  t.match(
    bad('data:\n  train_files: x\n  max_pixels: 0\nworker:\n  actor:\n    model:\n      model_path: /m\n'),
    /data\.max_pixels: 0 is too small; must be > 0/,
  );
  t.match(
    bad(`${minimal}    optim:\n      betas: [0.9]\n`),
    /worker\.actor\.optim\.betas: \[0\.9\] must have at least 2 items/,
    'a list too short is counted in items',
  );
  t.match(bad('data: [1, 2'), /bad\.yaml: not valid YAML/);
  t.match(bad('- a list'), /expected a mapping of sections/);
  t.match(
    errorOf(() => loadTrainingConfig(join(dir, 'missing.yaml'))),
    /missing\.yaml: cannot read \(ENOENT\)/,
  );
});

t.test('cross-key rules name the key and the keys it depends on', async (t) => {
  const base = parseYaml(minimal) as Record<string, never>;
  const withKeys = (extra: object) => errorOf(() => parseTrainingConfig({ ...base, ...extra }, 'cfg'));
  t.match(
    withKeys({
      data: { train_files: 'x', rollout_batch_size: 3 },
      worker: { actor: { model: { model_path: '/m' }, global_batch_size: 4 }, rollout: { n: 5 } },
    }),
    /worker\.actor\.global_batch_size: must divide data\.rollout_batch_size × worker\.rollout\.n = 15/,
  );
  t.match(
    withKeys({ worker: { actor: { model: { model_path: '/m' } }, rollout: { n: 1 } } }),
    /worker\.rollout\.n: adv_estimator grpo compares responses to the same prompt: n must be >= 2/,
  );
  t.match(
    withKeys({ algorithm: { filter_low: 0.5, filter_high: 0.5 } }),
    /algorithm\.filter_low: must be < algorithm\.filter_high \(0\.5\)/,
  );
  t.match(
    withKeys({ worker: { actor: { model: {} } } }),
    /worker\.actor\.model: give exactly one of model_path and init/,
  );
  t.match(
    withKeys({ algorithm: { overlong_buffer: { enable: true, len: 999 } } }),
    /algorithm\.overlong_buffer\.len: must be <= data\.max_response_length \(256\)/,
  );
  t.doesNotThrow(
    () =>
      parseTrainingConfig(
        {
          ...base,
          worker: {
            actor: { model: { model_path: '/m' }, global_batch_size: 4, micro_batch_size_per_device_for_update: 4 },
            rollout: { n: 1 },
          },
          algorithm: { adv_estimator: 'remax' },
        },
        'cfg',
      ),
    'ReMax works with n = 1',
  );
  t.match(
    withKeys({ data: { train_files: 'x', mini_rollout_batch_size: 2 } }),
    /data\.mini_rollout_batch_size: sets the prompts drawn per round while algorithm\.online_filtering refills a batch, and this run does not filter; .*remove the key/,
  );
  t.doesNotThrow(
    () =>
      parseTrainingConfig(
        { ...base, data: { train_files: 'x', mini_rollout_batch_size: 2 }, algorithm: { online_filtering: true } },
        'cfg',
      ),
    'rounds of a filtered batch',
  );
});

t.test('KL goes to the loss, the reward or nowhere; contradictory KL keys are refused', async (t) => {
  const base = parseYaml(minimal) as Record<string, never>;
  const parse = (algorithm: object, ref: object = {}) =>
    parseTrainingConfig({ ...base, algorithm, worker: { actor: { model: { model_path: '/m' } }, ref } }, 'cfg');
  const withKeys = (algorithm: object, ref: object = {}) => errorOf(() => parse(algorithm, ref));
  t.equal(klPlacement(parse({}).algorithm), 'off', 'default: no reference model');
  t.equal(klPlacement(parse({ use_kl_loss: true }).algorithm), 'loss', 'use_kl_loss alone (the GRPO example)');
  t.equal(
    klPlacement(parse({ use_kl_loss: true, disable_kl: false }).algorithm),
    'loss',
    "EasyR1's GRPO: KL loss, not in the reward",
  );
  t.equal(klPlacement(parse({ disable_kl: false }).algorithm), 'reward');
  t.equal(klPlacement(parse({ disable_kl: true }).algorithm), 'off');
  t.doesNotThrow(
    () =>
      parse(
        { disable_kl: false, kl_type: 'adaptive', kl_target: 0.05 },
        { micro_batch_size_per_device_for_experience: 2 },
      ),
    'adaptive KL in the reward',
  );
  t.match(
    withKeys({ disable_kl: true, use_kl_loss: true }),
    /algorithm\.use_kl_loss: the KL loss needs the reference model, which algorithm\.disable_kl: true turns off/,
  );
  t.match(
    withKeys({ kl_type: 'adaptive' }),
    /algorithm\.kl_type: 'adaptive' steers the coefficient of KL in the reward, which needs algorithm\.disable_kl: false and algorithm\.use_kl_loss: false$/m,
  );
  t.match(
    withKeys({ use_kl_loss: true, kl_type: 'adaptive' }),
    /algorithm\.kl_type: .*\(the KL loss uses the fixed algorithm\.kl_coef\)/,
  );
  t.match(
    withKeys({ disable_kl: false, kl_type: 'adaptive', kl_coef: 0 }),
    /algorithm\.kl_coef: must be > 0 with algorithm\.kl_type 'adaptive'/,
  );
  t.match(
    withKeys({}, { micro_batch_size_per_device_for_experience: 2 }),
    /worker\.ref\.micro_batch_size_per_device_for_experience: this run has no reference model \(KL is off\)/,
  );
});

t.test('the resolved config round-trips through YAML', async (t) => {
  const c = loadTrainingConfig(file, ['worker.actor.optim.lr=3e-7', 'algorithm.online_filtering=true']);
  const again = parseTrainingConfig(parseYaml(trainingConfigToYaml(c)), 'saved');
  t.same(again, c);
});
