// Linear with bf16 weights (the op table's bf16 entry, run through runOp: W [out, in] as bf16 bits,
// activations and sums in f32): against the f32 op on the widened weights (the few-row kernel gives
// their bits; the panel GEMM their values to f32 summation error), against the f32 op on the unrounded weights within the error that rounding the
// weights to bf16 explains, and dW/db identical to the f32 op's.
import t from 'tap';

import { bf16ToF32, f32ToBf16 } from '../../src/engine/bf16.js';
import {
  type LinearBackwardOptions,
  type LinearBackwardResult,
  type LinearOptions,
  linearBackward,
  linearForward,
} from '../../src/engine/layers.js';
import { opSupports, runOp } from '../../src/engine/ops.js';
import { buildInfo } from '../../src/engine/system.js';
import { assertClose, randn, rng, sameBits } from '../helpers/numeric.js';

const linearForwardBf16 = (x: Float32Array, W: Uint16Array, b: Float32Array | null, o: LinearOptions) =>
  runOp<{ y: Float32Array }>('linear.forward', 'cpu', { x, W, b }, o, 'bf16').y;
const linearBackwardBf16 = (dy: Float32Array, x: Float32Array, W: Uint16Array, o: LinearBackwardOptions) =>
  runOp<LinearBackwardResult>('linear.backward', 'cpu', { dy, x, W }, o, 'bf16');

t.test('the op table has linear in bf16 on the CPU and CUDA backends', async (t) => {
  t.ok(opSupports('cpu', 'linear', 'bf16'), 'supports(cpu, linear, bf16)');
  t.equal(opSupports('cuda', 'linear', 'bf16'), buildInfo().cuda, 'supports(cuda, linear, bf16) where CUDA is built');
  t.ok(opSupports('cpu', 'linear', 'f32'), 'the f32 entry stays');
});

// A float32 sum of K terms is within K * 2^-24 * sum|terms| of the exact value whatever the order of
// summation; inputs in (-1, 1) make every term < 1, so sum|terms| < K (as in linear.test.ts).
const sumTol = (K: number) => (K * K) / 2 ** 24;

// Shapes: the few-row kernel (T <= 128) with K tails and odd widths, and the panel GEMM (T > 128) with
// one panel, and with several panels and a partial last one (in = 4096: 64 rows a panel).
const shapes = [
  [1, 37, 29],
  [3, 64, 70],
  [128, 40, 33],
  [129, 48, 51],
  [150, 4096, 200],
] as const;

t.test('forward: the f32 op on the widened weights, and within bf16 rounding of the f32 op', async (t) => {
  const r = rng(11);
  for (const [T, nin, nout] of shapes) {
    const o = { T, in: nin, out: nout };
    const shape = `${T}x${nin}->${nout}`;
    const x = randn(T * nin, r);
    const W = randn(nout * nin, r);
    const b = randn(nout, r);
    const Wb = f32ToBf16(W);
    const Wr = bf16ToF32(Wb);
    const y = linearForwardBf16(x, Wb, b, o);
    const yRounded = linearForward(x, Wr, b, o);
    if (T <= 128) t.ok(sameBits(y, yRounded), `${shape}: the bits of the f32 op on the widened W`);
    else assertClose(t, y, yRounded, 2 * sumTol(nin + 1), 0, `${shape}: the f32 op on the widened W`);
    // Rounding moves each weight by at most 2^-8 of itself (bf16's unit roundoff: 8 significant bits),
    // so each output by at most sum_k |x_k W_k| 2^-8 < in * 2^-8 (randn is uniform in (-1, 1)), plus
    // the two f32 sums' error.
    assertClose(t, y, linearForward(x, W, b, o), nin / 256 + 2 * sumTol(nin + 1), 0, `${shape}: near the f32 op`);
    t.notOk(sameBits(y, linearForward(x, W, b, o)), `${shape}: the weights really were rounded`);
  }
});

t.test('backward: dx from the bf16 weights, dW and db exactly the f32 op', async (t) => {
  const r = rng(12);
  for (const [T, nin, nout] of shapes) {
    const o = { T, in: nin, out: nout, bias: true };
    const shape = `${T}x${nin}->${nout}`;
    const x = randn(T * nin, r);
    const Wb = f32ToBf16(randn(nout * nin, r));
    const dy = randn(T * nout, r);
    const g = linearBackwardBf16(dy, x, Wb, o);
    const ref = linearBackward(dy, x, bf16ToF32(Wb), o);
    // dx sums over out in panels of W's rows, in order: a different f32 summation of the same terms.
    assertClose(t, g.dx, ref.dx, 2 * sumTol(nout), 0, `${shape}: dx = dy W (widened)`);
    t.ok(sameBits(g.dW, ref.dW), `${shape}: dW = dy^T x in f32, the f32 op's bits`);
    t.ok(sameBits(g.db!, ref.db!), `${shape}: db the f32 op's bits`);
    t.equal(linearBackwardBf16(dy, x, Wb, { T, in: nin, out: nout }).db, undefined, `${shape}: no db without bias`);
  }
});

t.test('forward and backward are deterministic', async (t) => {
  const r = rng(13);
  const o = { T: 140, in: 96, out: 80 };
  const x = randn(o.T * o.in, r);
  const Wb = f32ToBf16(randn(o.out * o.in, r));
  const dy = randn(o.T * o.out, r);
  t.ok(sameBits(linearForwardBf16(x, Wb, null, o), linearForwardBf16(x, Wb, null, o)), 'forward bit-identical');
  const g1 = linearBackwardBf16(dy, x, Wb, o);
  const g2 = linearBackwardBf16(dy, x, Wb, o);
  t.ok(sameBits(g1.dx, g2.dx) && sameBits(g1.dW, g2.dW), 'backward bit-identical');
});

t.test('bad input throws a clear error', async (t) => {
  const o = { T: 2, in: 3, out: 4 };
  const x = new Float32Array(6);
  t.throws(
    () => linearForwardBf16(x, new Float32Array(12) as unknown as Uint16Array, null, o),
    /linearForwardBf16: W must be a Uint16Array \(bf16 bits\)/,
  );
  t.throws(
    () => linearForwardBf16(x, new Uint16Array(13), null, o),
    /linearForwardBf16: W must have length 12 \(out\*in\), got 13/,
  );
  t.throws(
    () => linearBackwardBf16(new Float32Array(7), x, new Uint16Array(12), o),
    /linearBackwardBf16: dy must have length 8 \(T\*out\), got 7/,
  );
  const nan = new Uint16Array(12);
  nan[5] = 0x7fc0;
  t.throws(
    () => linearForwardBf16(x, nan, null, o),
    /linearForwardBf16: W contains a non-finite value \(nan\) at index 5/,
  );
  t.throws(() => runOp('rmsnorm.forward', 'cpu', {}, {}, 'bf16'), /op 'rmsnorm' has no bf16 entry \(registered: f32\)/);
  t.throws(() => runOp('linear.forward', 'cpu', {}, {}, 'f16' as 'bf16'), /unknown dtype 'f16' \(f32, bf16\)/);
});
