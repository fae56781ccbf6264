// The sample order: each epoch a permutation, reproducible from the seed, different between epochs
// and seeds, unbiased, and resumable from {epoch, index, seed} at any point with exactly the samples
// an uninterrupted run would have drawn.
import t from 'tap';
import { DataOrder, epochOrder } from '../../src/data/index.js';

const isPermutation = (xs: Iterable<number> & { length: number }, n: number) =>
  [...xs].sort((a, b) => a - b).every((x, i) => x === i) && xs.length === n;

t.test('each epoch is a permutation; the seed fixes it; epochs and seeds differ', async (t) => {
  const a = epochOrder(50, 7, 0);
  t.ok(isPermutation(a, 50));
  t.same(epochOrder(50, 7, 0), a, 'same seed and epoch: same order');
  t.not([...epochOrder(50, 7, 1)].join(), [...a].join(), 'the next epoch is reshuffled');
  t.not([...epochOrder(50, 8, 0)].join(), [...a].join(), 'another seed, another order');
  t.same([...epochOrder(5, 7, 3, false)], [0, 1, 2, 3, 4], 'shuffle off: file order');
});

t.test('the shuffle is unbiased: over many seeds each sample lands in each slot about equally often', async (t) => {
  const n = 5;
  const trials = 5000;
  const counts = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let s = 0; s < trials; s++) epochOrder(n, s, 0).forEach((sample, slot) => counts[sample][slot]++);
  // Chi-square over the 25 cells with 16 degrees of freedom; 39.3 is its 0.999 quantile.
  const expected = trials / n;
  const chi2 = counts.flat().reduce((s, c) => s + (c - expected) ** 2 / expected, 0);
  t.ok(chi2 < 39.3, `chi-square ${chi2.toFixed(1)} < 39.3`);
});

t.test('next() crosses epochs; every epoch draws each sample once', async (t) => {
  const order = new DataOrder(7, { seed: 3, shuffle: true });
  const drawn = [...order.next(5), ...order.next(5), ...order.next(4)];
  t.ok(isPermutation(drawn.slice(0, 7), 7), 'epoch 0');
  t.ok(isPermutation(drawn.slice(7, 14), 7), 'epoch 1');
  t.same(drawn.slice(0, 7), [...epochOrder(7, 3, 0)]);
  t.same(drawn.slice(7), [...epochOrder(7, 3, 1)]);
  t.same(order.position(), { epoch: 1, index: 7, seed: 3 }, 'the end of epoch 1, not yet the start of epoch 2');
});

t.test('resuming from any saved position continues exactly as the uninterrupted run', async (t) => {
  const reference = new DataOrder(11, { seed: 5, shuffle: true }).next(60);
  for (const cut of [0, 1, 4, 11, 12, 22, 37]) {
    const first = new DataOrder(11, { seed: 5, shuffle: true });
    const head = first.next(cut);
    const saved = JSON.parse(JSON.stringify(first.position())); // as a checkpoint stores it
    const resumed = new DataOrder(11, { seed: 5, shuffle: true }, saved);
    t.same([...head, ...resumed.next(60 - cut)], reference, `cut after ${cut}`);
  }
});

t.test('a saved position that does not fit the data or the seed is refused with the reason', async (t) => {
  t.throws(
    () => new DataOrder(10, { seed: 1, shuffle: true }, { epoch: 0, index: 11, seed: 1 }),
    /epoch 0, index 11 does not fit a data set of 10 samples/,
  );
  t.throws(
    () => new DataOrder(10, { seed: 2, shuffle: true }, { epoch: 0, index: 3, seed: 1 }),
    /data\.seed 1, the config now says 2/,
  );
  t.throws(() => new DataOrder(10, { seed: 1, shuffle: true }, { epoch: -1, index: 0, seed: 1 }), /does not fit/);
  t.throws(() => new DataOrder(0, { seed: 1, shuffle: true }), /at least one sample/);
});
