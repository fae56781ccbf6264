// The LR schedule against its formula, and the batch splitters' guarantees.
import t from 'tap';
import { learningRateAt, splitByTokenBudget, splitIntoBatches, splitKeepingGroups } from '../../src/rl/index.js';

t.test('warm-up then constant', async (t) => {
  const o = { lr: 1e-3, totalSteps: 10, warmupSteps: 4, type: 'constant' as const };
  t.same(
    [0, 1, 2, 3, 4, 9, 20].map((s) => learningRateAt(s, o)),
    [0.25e-3, 0.5e-3, 0.75e-3, 1e-3, 1e-3, 1e-3, 1e-3],
  );
  t.equal(learningRateAt(0, { lr: 2, totalSteps: 5, type: 'constant' }), 2, 'no warm-up');
  t.throws(() => learningRateAt(-1, o), /non-negative integer/);
});

t.test('cosine to min_lr_ratio, warm-up from a ratio of the total', async (t) => {
  const o = { lr: 1, totalSteps: 12, warmupRatio: 0.25, type: 'cosine' as const, minLrRatio: 0.1 };
  // warm-up: floor(0.25 * 12) = 3 steps
  t.ok(Math.abs(learningRateAt(0, o) - 1 / 3) < 1e-12);
  t.equal(learningRateAt(3, o), 1, 'peak right after warm-up');
  for (const s of [3, 5, 7.5, 12].map(Math.floor)) {
    const p = (s - 3) / 9;
    const want = 0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * p));
    t.ok(Math.abs(learningRateAt(s, o) - want) < 1e-12, `step ${s}`);
  }
  t.ok(Math.abs(learningRateAt(12, o) - 0.1) < 1e-12, 'the floor at the last step');
  t.ok(Math.abs(learningRateAt(50, o) - 0.1) < 1e-12, 'held at the floor after');
});

t.test('splitIntoBatches: consecutive chunks, the remainder last', async (t) => {
  t.same(splitIntoBatches(7, 3), [[0, 1, 2], [3, 4, 5], [6]]);
  t.same(splitIntoBatches(0, 3), []);
  t.throws(() => splitIntoBatches(4, 0), /positive integer/);
});

t.test('splitKeepingGroups: whole groups only, at most size responses per batch', async (t) => {
  const groups = ['p', 'p', 'q', 'q', 'q', 'r', 'p', 's'];
  const batches = splitKeepingGroups(groups, 4);
  t.same(batches, [[0, 1, 6], [2, 3, 4, 5], [7]]);
  for (const b of batches) {
    t.ok(b.length <= 4);
    for (const g of new Set(b.map((i) => groups[i])))
      t.equal(b.filter((i) => groups[i] === g).length, groups.filter((x) => x === g).length, `group ${g} whole`);
  }
  t.same(
    batches.flat().sort((a, b) => a - b),
    [0, 1, 2, 3, 4, 5, 6, 7],
    'every response once',
  );
  t.throws(() => splitKeepingGroups(groups, 2), /group p has 3 responses, more than the batch size 2/);
});

t.test('splitByTokenBudget: token sums within the budget; an oversize sequence alone', async (t) => {
  t.same(splitByTokenBudget([3, 4, 2, 9, 1, 1], 7), [[0, 1], [2], [3], [4, 5]]);
  t.same(splitByTokenBudget([], 7), []);
});
