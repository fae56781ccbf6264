// Advantage estimators, DAPO's group filter and the LR schedule against direct formulas.
import t from 'tap';
import { grpoAdvantages, keepInformativeGroups, learningRate, reinforcePlusPlusAdvantages, rlooAdvantages } from '../../src/train/algorithms.js';

const rewards = [1, 0, 0.5, 0.2, 0.9, 0.9, 0.3];
const groups = [0, 0, 0, 1, 1, 1, 2];

t.test('GRPO: (r - mean) / (unbiased std + eps) per group; lone samples get 0', async (t) => {
  const a = grpoAdvantages(rewards, groups);
  // group 0: mean 0.5, unbiased std sqrt(((0.5)^2 + (0.5)^2 + 0) / 2) = 0.5
  t.ok(Math.abs(a[0] - 0.5 / (0.5 + 1e-6)) < 1e-12);
  t.ok(Math.abs(a[1] + 0.5 / (0.5 + 1e-6)) < 1e-12);
  t.equal(a[2], 0);
  const m1 = (0.2 + 0.9 + 0.9) / 3;
  const s1 = Math.sqrt(((0.2 - m1) ** 2 + 2 * (0.9 - m1) ** 2) / 2);
  t.ok(Math.abs(a[3] - (0.2 - m1) / (s1 + 1e-6)) < 1e-12);
  t.equal(a[6], 0, 'a group of one carries no signal');
  t.same(grpoAdvantages([1, 1, 1], [0, 0, 0]), [0, 0, 0], 'equal rewards: zero, not NaN');
  const noStd = grpoAdvantages(rewards, groups, false);
  t.ok(Math.abs(noStd[4] - (0.9 - m1)) < 1e-12, 'without std scaling: r - mean');
});

t.test('RLOO: r minus the mean of the others in the group', async (t) => {
  const a = rlooAdvantages(rewards, groups);
  t.ok(Math.abs(a[0] - (1 - (0 + 0.5) / 2)) < 1e-12);
  t.ok(Math.abs(a[3] - (0.2 - 0.9)) < 1e-12);
  t.equal(a[6], 0);
});

t.test('REINFORCE++: batch whitening', async (t) => {
  const a = reinforcePlusPlusAdvantages(rewards);
  const m = rewards.reduce((s, r) => s + r, 0) / rewards.length;
  const sd = Math.sqrt(rewards.reduce((s, r) => s + (r - m) ** 2, 0) / rewards.length);
  rewards.forEach((r, i) => t.ok(Math.abs(a[i] - (r - m) / (sd + 1e-8)) < 1e-12));
  t.ok(Math.abs(a.reduce((s, x) => s + x, 0)) < 1e-9, 'zero mean');
});

t.test('DAPO filter keeps groups with mean strictly inside (low, high)', async (t) => {
  const keep = keepInformativeGroups([0, 0, 1, 1, 0.5, 0, 1, 0.0], [0, 0, 1, 1, 2, 2, 3, 3], 0.01, 0.99);
  t.same([...keep].sort(), [2, 3]);
});

t.test('learning rate: linear warm-up, then constant or cosine to the floor', async (t) => {
  const s = { lr: 1e-3, warmupSteps: 4, totalSteps: 24, kind: 'cosine' as const, minLrRatio: 0.1 };
  t.same([0, 1, 2, 3].map((i) => learningRate(s, i)), [2.5e-4, 5e-4, 7.5e-4, 1e-3]);
  t.equal(learningRate(s, 4), 1e-3);
  t.ok(Math.abs(learningRate(s, 14) - (1e-4 + 0.9e-3 * 0.5)) < 1e-15, 'half way: midpoint');
  t.ok(Math.abs(learningRate(s, 24) - 1e-4) < 1e-15, 'ends at min_lr_ratio * lr');
  t.equal(learningRate({ ...s, kind: 'constant' }, 20), 1e-3);
});
