// Advantage estimators against their formulas written out by hand on small batches.
import t from 'tap';
import type { Test } from 'tap';
import {
  computeAdvantages,
  grpoAdvantages,
  grpoPassKAdvantages,
  reinforcePlusPlusAdvantages,
  remaxAdvantages,
  rlooAdvantages,
  scoresToTokenRewards,
} from '../../src/rl/index.js';

const close = (t: Test, a: number, b: number, msg: string, tol = 1e-9) =>
  t.ok(Math.abs(a - b) <= tol, `${msg}: ${a} vs ${b}`);

// Two groups of three plus a lone response; group ids may be strings (prompt uids).
const scores = [1, 0, 0.5, 0.2, 0.8, 0.8, 0.7];
const groups = ['a', 'a', 'a', 'b', 'b', 'b', 'c'];

t.test('GRPO: (r - group mean) / (unbiased group std + 1e-6); r - mean without std', async (t) => {
  const { advantages: a, metrics } = grpoAdvantages({ scores, groups });
  // group a: mean 0.5, unbiased std = sqrt((0.25 + 0.25 + 0) / 2) = 0.5
  close(t, a[0], 0.5 / 0.500001, 'a0');
  close(t, a[1], -0.5 / 0.500001, 'a1');
  close(t, a[2], 0, 'a2');
  // group b: mean 0.6, deviations -0.4, 0.2, 0.2, unbiased std = sqrt(0.24 / 2)
  const sb = Math.sqrt(0.12);
  close(t, a[3], -0.4 / (sb + 1e-6), 'b0');
  close(t, a[4], 0.2 / (sb + 1e-6), 'b1');
  t.equal(a[6], 0, 'a lone response has no baseline: 0');
  t.equal(metrics['grpo/singleton_groups'], 1);
  const plain = grpoAdvantages({ scores, groups }, { normByStd: false }).advantages;
  close(t, plain[3], -0.4, 'no std: r - mean');
  close(t, plain[0], 0.5, 'no std: r - mean');
  const same = grpoAdvantages({ scores: [0.3, 0.3, 0.3], groups: [1, 1, 1] });
  t.same(same.advantages, [0, 0, 0], 'equal rewards: zeros, not NaN');
  t.equal(same.metrics['grpo/zero_std_group_ratio'], 1);
  t.throws(() => grpoAdvantages({ scores: [1, 2], groups: [0] }), /scores has 2 entries but groups has 1/);
});

t.test('GRPO pass@k: only the best of a group learns, by (best - second) / (std + eps)', async (t) => {
  const { advantages: a } = grpoPassKAdvantages({ scores, groups });
  close(t, a[0], (1 - 0.5) / (0.5 + 1e-6), 'best of a');
  t.equal(a[1], 0);
  t.equal(a[2], 0);
  // group b ties at 0.8: the first sampled wins, and best - second = 0
  t.equal(a[4], 0);
  t.equal(a[3], 0);
  t.equal(a[6], 0, 'lone response: 0');
  const b = grpoPassKAdvantages({ scores: [0.1, 0.9, 0.4], groups: [0, 0, 0] }).advantages;
  const sd = Math.sqrt(((0.1 - 0.466666666) ** 2 + (0.9 - 0.466666666) ** 2 + (0.4 - 0.466666666) ** 2) / 2);
  close(t, b[1], 0.5 / (sd + 1e-6), 'best is the second response', 1e-6);
  t.same([b[0], b[2]], [0, 0]);
});

t.test('RLOO: r minus the mean of the other responses of its group', async (t) => {
  const a = rlooAdvantages({ scores, groups }).advantages;
  close(t, a[0], 1 - (0 + 0.5) / 2, 'a0');
  close(t, a[2], 0.5 - (1 + 0) / 2, 'a2');
  close(t, a[3], 0.2 - 0.8, 'b0');
  t.equal(a[6], 0);
});

t.test('ReMax: r minus the greedy response reward', async (t) => {
  const a = remaxAdvantages([1, 0.2, 0.5], [0.5, 0.5, 0.0]);
  t.same(
    a.advantages.map((x) => Math.round(x * 1e12) / 1e12),
    [0.5, -0.3, 0.5],
  );
  close(t, a.metrics['remax/baseline_mean'], 1 / 3, 'baseline mean');
  t.throws(() => computeAdvantages('remax', { groups: [0], tokenRewards: [new Float32Array([1])] }), /greedyBaselines/);
});

t.test('REINFORCE++: discounted returns per token, whitened over the batch (unbiased var)', async (t) => {
  const rewards = [new Float32Array([0, 0, 1]), new Float32Array([0.5, -0.25])];
  const gamma = 0.5;
  const { returns, advantages } = reinforcePlusPlusAdvantages(rewards, { gamma });
  // G_t = r_t + gamma G_{t+1}: [0.25, 0.5, 1] and [0.5 - 0.125, -0.25]
  const G = [0.25, 0.5, 1, 0.375, -0.25];
  t.same(Array.from(returns[0]).concat(Array.from(returns[1])), G);
  const m = G.reduce((s, x) => s + x, 0) / 5;
  const v = G.reduce((s, x) => s + (x - m) ** 2, 0) / 4;
  const flat = Array.from(advantages[0]).concat(Array.from(advantages[1]));
  flat.forEach((x, i) => close(t, x, (G[i] - m) / Math.sqrt(v + 1e-8), `token ${i}`, 1e-6));
});

t.test('computeAdvantages passes normByStd to GRPO: off, the advantage is r - mean (Dr. GRPO)', async (t) => {
  const tokenRewards = [Float32Array.of(0, 1), Float32Array.of(0.5), Float32Array.of(0, 0)];
  const groups = [0, 0, 0];
  const plain = computeAdvantages('grpo', { groups, tokenRewards }, { normByStd: false }).advantages;
  // scores 1, 0.5, 0: mean 0.5
  t.same(
    plain.map((a) => [...a]),
    [[0.5, 0.5], [0], [-0.5, -0.5]],
  );
  const scaled = computeAdvantages('grpo', { groups, tokenRewards }).advantages;
  close(t, scaled[0][0], 0.5 / (0.5 + 1e-6), 'by default divided by the unbiased std (0.5)', 1e-6);
});

t.test('computeAdvantages: outcome estimators broadcast over tokens, score = sum of token rewards', async (t) => {
  const lengths = [2, 3, 1, 4];
  const tokenRewards = scoresToTokenRewards([1, 0, 1, 1], lengths);
  t.same(Array.from(tokenRewards[1]), [0, 0, 0], 'the score sits on the last token');
  t.same(Array.from(tokenRewards[3]), [0, 0, 0, 1]);
  tokenRewards[0][0] = -0.5; // a KL-in-reward penalty on the first token lowers the response's score to 0.5
  const { advantages } = computeAdvantages('rloo', { groups: [0, 0, 1, 1], tokenRewards });
  t.same(
    advantages.map((a) => a.length),
    lengths,
  );
  t.ok(
    advantages[0].every((x) => Math.abs(x - 0.5) < 1e-6),
    'r0 = 0.5, other = 0',
  );
  t.ok(advantages[1].every((x) => Math.abs(x + 0.5) < 1e-6));
  t.ok(
    advantages[3].every((x) => x === 0),
    'equal scores: 0',
  );
  t.throws(
    () => computeAdvantages('bogus' as never, { groups: [0], tokenRewards: [new Float32Array(1)] }),
    /allowed: grpo, grpo_passk, rloo, remax, reinforce_plus_plus/,
  );
});
