// DAPO online filtering and batch refill, overlong reward shaping, KL in the reward and its
// controllers, against the formulas written out by hand.
import t from 'tap';
import {
  AdaptiveKlController,
  FixedKlController,
  applyKlPenalty,
  createKlController,
  fillFilteredBatch,
  filterGroupsByMeanScore,
  meanScoreBand,
  overlongPenalty,
  shapeOverlongRewards,
} from '../../src/rl/index.js';

t.test('online filter drops groups whose mean is <= low or >= high, keeps the rest in order', async (t) => {
  // means: g1 0 (all wrong), g2 1 (all right), g3 0.5, g4 0.01 (at low: dropped), g5 0.99 (at high: dropped), g6 0.02
  const scores = [0, 0, 1, 1, 1, 0, 0.02, 0, 1, 0.98, 0.03, 0.01];
  const groups = [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6];
  const r = filterGroupsByMeanScore(scores, groups, 0.01, 0.99);
  t.same(r.kept, [3, 6]);
  t.same(r.droppedLow, [1, 4]);
  t.same(r.droppedHigh, [2, 5]);
  t.same(r.metrics, {
    'filter/groups': 6,
    'filter/kept_ratio': 2 / 6,
    'filter/dropped_low': 2,
    'filter/dropped_high': 2,
  });
});

t.test('meanScoreBand: at or below low and at or above high are dropped, strictly inside is kept', async (t) => {
  t.equal(meanScoreBand([0, 0.02], 0.01, 0.99), 'low', 'mean 0.01 is at the low bound');
  t.equal(meanScoreBand([1, 0.98], 0.01, 0.99), 'high', 'mean 0.99 is at the high bound');
  t.equal(meanScoreBand([0, 0.04], 0.01, 0.99), 'kept');
});

t.test(
  'fillFilteredBatch samples rounds until the kept groups reach the target, then cuts to exactly the target',
  async (t) => {
    const rounds = [[0, 0.5, 1], [0.4, 1], [0.6, 0.7, 0.2], [0.3]];
    const seen: number[] = [];
    const r = await fillFilteredBatch({
      target: 3,
      maxRounds: 5,
      sampleRound: async (round) => {
        seen.push(round);
        return rounds[round - 1];
      },
      keep: (m) => m > 0.01 && m < 0.99,
    });
    t.same(
      r.groups,
      [0.5, 0.4, 0.6],
      'the last round took the batch past the target: the first 3 kept groups, in sampling order',
    );
    t.same(seen, [1, 2, 3], 'no round after the target is reached');
    t.same(
      { rounds: r.rounds, sampledGroups: r.sampledGroups, kept: r.kept, exhausted: r.exhausted },
      { rounds: 3, sampledGroups: 8, kept: 5, exhausted: false },
    );
  },
);

t.test('fillFilteredBatch counts prompt groups, whatever their number of responses', async (t) => {
  // One group lost a response (e.g. its reward was unavailable): it is still one prompt of the batch.
  const rounds = [
    [[1, 1], [1]],
    [
      [1, 1],
      [1, 1],
    ],
  ];
  const r = await fillFilteredBatch({
    target: 3,
    maxRounds: 0,
    sampleRound: async (round) => rounds[round - 1],
    keep: () => true,
  });
  t.equal(r.rounds, 2);
  t.same(r.groups, [[1, 1], [1], [1, 1]]);
});

t.test('fillFilteredBatch: when the rounds run out it returns what was kept, flagged exhausted', async (t) => {
  let calls = 0;
  const r = await fillFilteredBatch({
    target: 4,
    maxRounds: 3,
    sampleRound: async () => {
      calls++;
      return [1, 1, 0.5];
    },
    keep: (m) => m < 0.99,
  });
  t.equal(calls, 3, 'exactly maxRounds rounds');
  t.same(r, { groups: [0.5, 0.5, 0.5], kept: 3, rounds: 3, sampledGroups: 9, exhausted: true });
  const none = await fillFilteredBatch({ target: 2, maxRounds: 1, sampleRound: async () => [0], keep: () => false });
  t.same(none, { groups: [], kept: 0, rounds: 1, sampledGroups: 1, exhausted: true }, 'one round keeping nothing');
  const single = await fillFilteredBatch({
    target: 2,
    maxRounds: 1,
    sampleRound: async () => [0, 1, 2],
    keep: () => true,
  });
  t.same(
    single,
    { groups: [0, 1], kept: 3, rounds: 1, sampledGroups: 3, exhausted: false },
    'one round that fills the batch, cut to the target',
  );
});

t.test('fillFilteredBatch: maxRounds <= 0 or Infinity places no limit on rounds', async (t) => {
  for (const maxRounds of [0, -1, Infinity]) {
    let round = 0;
    const r = await fillFilteredBatch({
      target: 1,
      maxRounds,
      sampleRound: async () => [++round],
      keep: (x) => x === 30,
    });
    t.same(
      { rounds: r.rounds, groups: r.groups, exhausted: r.exhausted },
      { rounds: 30, groups: [30], exhausted: false },
      `maxRounds ${maxRounds}`,
    );
  }
  const never = { sampleRound: async () => [], keep: () => true };
  await t.rejects(fillFilteredBatch({ ...never, target: 0, maxRounds: 1 }), /target must be positive, got 0/);
  await t.rejects(fillFilteredBatch({ ...never, target: 1, maxRounds: NaN }), /maxRounds is NaN/);
});

t.test(
  'overlong penalty: 0 up to max - buffer, then -(len - (max - buffer)) / buffer * factor, capped at 0',
  async (t) => {
    const o = { maxResponseLength: 100, bufferLength: 20, penaltyFactor: 1 };
    t.equal(overlongPenalty(50, o), 0);
    t.equal(overlongPenalty(80, o), 0, 'at the start of the buffer: no penalty');
    t.equal(overlongPenalty(90, o), -0.5);
    t.equal(overlongPenalty(100, o), -1, 'at the limit: the full factor');
    t.equal(overlongPenalty(95, { ...o, penaltyFactor: 0.5 }), -0.375);
    t.throws(
      () => overlongPenalty(10, { ...o, bufferLength: 0 }),
      /bufferLength must be in \(0, maxResponseLength = 100\]/,
    );
    const shaped = shapeOverlongRewards([1, 0.5, 0.2], [10, 90, 100], o);
    t.same(shaped.scores, [1, 0, -0.8]);
    t.same(shaped.metrics, { 'overlong/penalized_ratio': 2 / 3, 'overlong/penalty_mean': -0.5 });
  },
);

t.test('KL in reward: r_t - coef * kl_t; batch KL is the mean of per-response token means', async (t) => {
  const scores = [new Float32Array([0, 0, 1]), new Float32Array([0, 0.5])];
  const kl = [new Float32Array([0.1, 0.2, 0.3]), new Float32Array([0.4, 0])];
  const r = applyKlPenalty(scores, kl, 0.5);
  t.same(Array.from(r.tokenRewards[0]), Array.from(new Float32Array([-0.05, -0.1, 1 - 0.15])));
  t.same(Array.from(r.tokenRewards[1]), Array.from(new Float32Array([-0.2, 0.5])));
  t.ok(Math.abs(r.meanKl - (0.2 + 0.2) / 2) < 1e-7, `mean kl ${r.meanKl}`);
  t.equal(r.metrics['kl/coef'], 0.5);
  t.throws(
    () => applyKlPenalty([new Float32Array(2)], [new Float32Array(3)], 1),
    /response 0 has 2 token scores but 3 KL values/,
  );
});

t.test('KL controllers: fixed stays; adaptive multiplies by 1 + clip(kl/target - 1, ±0.2) n / horizon', async (t) => {
  const fixed = new FixedKlController(0.1);
  fixed.update();
  t.equal(fixed.coef, 0.1);
  const a = new AdaptiveKlController(0.1, 0.05, 1000);
  a.update(0.06, 100); // error 0.2 -> coef * (1 + 0.2 * 0.1)
  t.ok(Math.abs(a.coef - 0.1 * 1.02) < 1e-15);
  a.update(1.0, 100); // error clipped to 0.2
  t.ok(Math.abs(a.coef - 0.1 * 1.02 * 1.02) < 1e-15);
  a.update(0.0, 500); // error clipped to -0.2 -> * 0.9
  t.ok(Math.abs(a.coef - 0.1 * 1.02 * 1.02 * 0.9) < 1e-15);
  const resumed = createKlController(
    { kl_type: 'adaptive', kl_coef: 0.1, kl_target: 0.05, kl_horizon: 1000 },
    a.state(),
  );
  t.equal(resumed.coef, a.coef, 'resumes from the saved coefficient');
  t.throws(() => new AdaptiveKlController(0.1, 0.05, 0), /kl_horizon must be > 0/);
});
