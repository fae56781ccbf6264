// Token embedding: lookup and its gradient (scatter-add into the table, repeated ids summing up).
import t from 'tap';

import { embeddingBackward, embeddingForward } from '../../src/engine/layers.js';
import { assertClose, dot, gradcheck, randInt, randn, rng, sameBits } from '../helpers/numeric.js';

// Float64 references, written plainly.
function refForward(ids: Int32Array, table: Float32Array, dim: number): Float64Array {
  const out = new Float64Array(ids.length * dim);
  for (let i = 0; i < ids.length; i++) for (let c = 0; c < dim; c++) out[i * dim + c] = table[ids[i] * dim + c];
  return out;
}
function refBackward(dout: Float32Array, ids: Int32Array, vocab: number, dim: number): Float64Array {
  const dtable = new Float64Array(vocab * dim);
  for (let i = 0; i < ids.length; i++) for (let c = 0; c < dim; c++) dtable[ids[i] * dim + c] += dout[i * dim + c];
  return dtable;
}

t.test('forward copies rows and backward sums gradients of repeated ids', async (t) => {
  const r = rng(1);
  // dim 200 spans several 64-column chunks, so the column split across threads is exercised.
  for (const [vocab, dim, n] of [
    [7, 5, 12],
    [30, 200, 40],
  ]) {
    const table = randn(vocab * dim, r);
    const ids = randInt(n, r, 0, vocab);
    ids[1] = ids[0]; // at least one repeated id
    const out = embeddingForward(ids, table, { vocab, dim });
    // A copy is exact.
    t.same(Array.from(out), Array.from(refForward(ids, table, dim)), `forward vocab=${vocab} dim=${dim}`);

    const dout = randn(n * dim, r);
    const dtable = embeddingBackward(dout, ids, { vocab, dim });
    // Each entry is a float32 sum of at most n terms of size <= 1: error <= n * 2^-24 * n ≈ 1e-4 at
    // worst for n = 40; in practice an id repeats a few times, so 1e-5 absolute is already generous.
    assertClose(t, dtable, refBackward(dout, ids, vocab, dim), 1e-5, 1e-5, `backward vocab=${vocab} dim=${dim}`);
  }
});

t.test('finite differences agree with backward for the table', async (t) => {
  const r = rng(2);
  const vocab = 9,
    dim = 6,
    n = 15;
  const table = randn(vocab * dim, r);
  const ids = randInt(n, r, 0, vocab);
  const probe = randn(n * dim, r);
  const grad = embeddingBackward(probe, ids, { vocab, dim });
  // The loss is linear in the table and the forward copies exactly, so the only error is the
  // float64 summation of the loss: 1e-6 is far above it and far below any real gradient (~0.1-1).
  const res = gradcheck({
    param: table,
    grad,
    loss: () => dot(embeddingForward(ids, table, { vocab, dim }), probe),
    eps: 1e-2,
    atol: 1e-6,
    rtol: 1e-6,
  });
  t.ok(res.worst <= 1, `table gradient (worst ${res.worst.toFixed(3)} at ${res.index})`);
});

t.test('backward is deterministic', async (t) => {
  const r = rng(3);
  const vocab = 20,
    dim = 512,
    n = 300; // many repeats of each id, 8 column chunks
  const ids = randInt(n, r, 0, vocab);
  const dout = randn(n * dim, r);
  const a = embeddingBackward(dout, ids, { vocab, dim });
  const b = embeddingBackward(dout, ids, { vocab, dim });
  t.ok(sameBits(a, b), 'two runs are bit-identical');
});

t.test('bad input throws a clear error', async (t) => {
  const o = { vocab: 4, dim: 3 };
  const table = new Float32Array(12);
  const ids = Int32Array.from([0, 3, 1]);
  t.throws(
    () => embeddingForward(Float32Array.from([0, 1]) as unknown as Int32Array, table, o),
    /embeddingForward: ids must be a Int32Array/,
  );
  t.throws(
    () => embeddingForward(ids, new Float32Array(11), o),
    /embeddingForward: table must have length 12 \(vocab\*dim\), got 11/,
  );
  t.throws(
    () => embeddingForward(Int32Array.from([0, 4]), table, o),
    /embeddingForward: ids\[1\] = 4 is out of range \[0, 4\)/,
  );
  t.throws(() => embeddingForward(Int32Array.from([-1]), table, o), /embeddingForward: ids\[0\] = -1 is out of range/);
  const nanTable = new Float32Array(12);
  nanTable[7] = NaN;
  t.throws(
    () => embeddingForward(ids, nanTable, o),
    /embeddingForward: table contains a non-finite value \(nan\) at index 7/,
  );
  t.throws(
    () => embeddingForward(ids, table, { vocab: 4 } as typeof o),
    /embeddingForward: option 'dim' must be a number/,
  );
  t.throws(
    () => embeddingBackward(new Float32Array(8), ids, o),
    /embeddingBackward: dout must have length 9 \(ids.length\*dim\), got 8/,
  );
  t.throws(
    () => embeddingBackward(new Float32Array(9), Int32Array.from([0, 1, 9]), o),
    /embeddingBackward: ids\[2\] = 9 is out of range/,
  );
  const nanDout = new Float32Array(9);
  nanDout[4] = NaN;
  t.throws(
    () => embeddingBackward(nanDout, ids, o),
    /embeddingBackward: dout contains a non-finite value \(nan\) at index 4/,
  );
});
