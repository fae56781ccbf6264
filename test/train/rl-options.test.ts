// The config keys reach the RL functions as the options they name: each key set away from its default
// (and away from its neighbours' values, so two keys swapped would show) is read back from the options.
import t from 'tap';
import { parseTrainingConfig } from '../../src/config/index.js';
import type { RewardComponent } from '../../src/reward/components.js';
import { advantageOptions, onlineFilterKeep, policyLossOptions } from '../../src/train/rl-options.js';

const config = (actor: object, algorithm: object = {}) =>
  parseTrainingConfig(
    { data: { train_files: 'x.jsonl' }, algorithm, worker: { actor: { model: { model_path: '/m' }, ...actor } } },
    'test',
  );

t.test('worker.actor loss keys and the KL loss term', async (t) => {
  const o = policyLossOptions(
    config(
      {
        loss_type: 'gspo',
        loss_avg_mode: 'seq',
        clip_ratio_low: 0.1,
        clip_ratio_high: 0.35,
        clip_ratio_dual: 2.5,
        entropy_coef: 0.002,
      },
      { use_kl_loss: true, kl_penalty: 'low_var_kl', kl_coef: 0.03 },
    ),
  );
  t.same(o, {
    kind: 'gspo',
    agg: 'seq-mean-token-mean',
    clipLow: 0.1,
    clipHigh: 0.35,
    dualClip: 2.5,
    kl: 'low_var_kl',
    klCoef: 0.03,
    entropyCoef: 0.002,
  });
  const dapo = policyLossOptions(config({ loss_avg_mode: 'token', clip_ratio_low: 0.2, clip_ratio_high: 0.28 }));
  t.match(dapo, { kind: 'ppo', agg: 'token-mean', clipLow: 0.2, clipHigh: 0.28, kl: 'none' }, "DAPO's clip-higher");
  const inReward = policyLossOptions(config({}, { disable_kl: false, kl_penalty: 'k1' }));
  t.equal(inReward.kl, 'none', 'KL in the reward is no loss term');
});

t.test("online filtering keeps a group by its filter_key component's mean, strictly inside the bounds", async (t) => {
  const r = (overall: number, accuracy_llm: number): Record<RewardComponent, number | null> => ({
    overall,
    accuracy_llm,
    format: 1,
    accuracy_embed: 0,
    modality: 1,
  });
  // overall says keep (mean 0.5), accuracy_llm says drop (all 1): only the configured key decides.
  const group = [r(0.4, 1), r(0.6, 1)];
  const byOverall = onlineFilterKeep(config({}, { online_filtering: true }).algorithm);
  const byAccuracy = onlineFilterKeep(config({}, { online_filtering: true, filter_key: 'accuracy_llm' }).algorithm);
  t.ok(byOverall(group), 'kept by overall');
  t.notOk(byAccuracy(group), 'dropped by accuracy_llm (mean 1 >= filter_high)');
  t.ok(byAccuracy([r(0, 1), r(0, 0)]), 'kept by accuracy_llm (mean 0.5)');
  const bounds = onlineFilterKeep(config({}, { online_filtering: true, filter_low: 0.3, filter_high: 0.5 }).algorithm);
  t.notOk(bounds([r(0.3, 0), r(0.3, 0)]), 'a mean at filter_low is dropped');
  t.ok(bounds([r(0.3, 0), r(0.4, 0)]), 'inside the bounds');
  t.notOk(bounds([r(0.5, 0), r(0.5, 0)]), 'a mean at filter_high is dropped');
  const missing = { ...r(0.5, 0), accuracy_llm: null };
  t.notOk(byAccuracy([missing, missing]), 'an unavailable component counts 0');
  t.ok(onlineFilterKeep(config({}).algorithm)([r(1, 1)]), 'without online_filtering every group is kept');
});

t.test("algorithm's advantage keys", async (t) => {
  t.same(advantageOptions(config({}).algorithm), { normByStd: true, gamma: 1 }, 'defaults: GRPO divides by the std');
  t.same(advantageOptions(config({}, { norm_adv_by_std_in_grpo: false, gamma: 0.9 }).algorithm), {
    normByStd: false,
    gamma: 0.9,
  });
});
