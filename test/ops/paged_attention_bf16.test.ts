// Paged attention and the cache write over a bf16 KV cache (the op table's bf16 entries, through
// runOp): kv_cache_write rounds with bf16.h's conversion (f32ToBf16's bits), and attention over a
// bf16 cache equals attention over an f32 cache holding the same bf16-rounded values up to f32
// accumulation error, whose bound is derived below.
import t from 'tap';

import { bf16ToF32, f32ToBf16 } from '../../src/engine/bf16.js';
import { opSupports, runOp } from '../../src/engine/ops.js';
import { buildInfo } from '../../src/engine/system.js';
import { randn, rng } from '../helpers/numeric.js';
import { pagedAttentionBound, pagedAttentionDirect } from '../helpers/paged-attention.js';

interface Shape {
  heads: number;
  kvHeads: number;
  headDim: number;
  blockSize: number;
}

// Two sequences of 3 blocks each sharing their first block (n samples of one prompt), T tokens with
// random visible key counts; cache values in (-1, 1), rounded to bf16.
function setup(s: Shape, seed: number) {
  const r = rng(seed);
  const kvDim = s.kvHeads * s.headDim;
  const maxBlocks = 3;
  const nBlocks = 5;
  const blockTables = Int32Array.from([0, 1, 2, 0, 3, 4]);
  const T = 5;
  const seqOfToken = Int32Array.from([0, 1, 1, 0, 1]);
  const nKeys = Int32Array.from([1, 7, 12, 9, 3]);
  const q = randn(T * s.heads * s.headDim, r);
  const kCache = f32ToBf16(randn(nBlocks * s.blockSize * kvDim, r));
  const vCache = f32ToBf16(randn(nBlocks * s.blockSize * kvDim, r));
  const options = { ...s, maxBlocks };
  return { T, q, kCache, vCache, blockTables, seqOfToken, nKeys, options, maxKeys: maxBlocks * s.blockSize };
}

t.test('paged attention and the cache write are registered in bf16 on the CPU and CUDA backends', async (t) => {
  for (const family of ['paged_attention', 'kv_cache_write']) {
    t.ok(opSupports('cpu', family, 'bf16'), `${family}: cpu, bf16`);
    t.ok(opSupports('cpu', family, 'f32'), `${family}: cpu, f32`);
    t.equal(opSupports('cuda', family, 'bf16'), buildInfo().cuda, `${family}: cuda, bf16 where CUDA is built`);
  }
});

for (const headDim of [8, 12])
  t.test(`attention over a bf16 cache = over the widened f32 cache (head_dim ${headDim})`, async (t) => {
    const s = setup({ heads: 4, kvHeads: 2, headDim, blockSize: 4 }, 31 + headDim);
    const { q, kCache, vCache, blockTables, seqOfToken, nKeys, options } = s;
    const bf16 = runOp<{ out: Float32Array }>(
      'paged_attention.forward',
      'cpu',
      { q, kCache, vCache, blockTables, seqOfToken, nKeys },
      options,
      'bf16',
    ).out;
    const inputs = { q, kCache: bf16ToF32(kCache), vCache: bf16ToF32(vCache), blockTables, seqOfToken, nKeys };
    const f32 = runOp<{ out: Float32Array }>('paged_attention.forward', 'cpu', inputs, options).out;
    // Both evaluate the same formula on the same values, each within pagedAttentionBound of the
    // exact result: twice that apart.
    const tol = 2 * pagedAttentionBound(headDim, s.maxKeys);
    const worst = bf16.reduce((m, v, i) => Math.max(m, Math.abs(v - f32[i])), 0);
    t.ok(worst <= tol, `worst |diff| ${worst.toExponential(2)} <= ${tol.toExponential(2)}`);
    // And each is that close to the direct formula in double on the widened values.
    const exact = pagedAttentionDirect(s, bf16ToF32(kCache), bf16ToF32(vCache));
    const worstExact = bf16.reduce((m, v, i) => Math.max(m, Math.abs(v - exact[i])), 0);
    t.ok(
      worstExact <= tol / 2,
      `bf16 cache vs the direct formula: ${worstExact.toExponential(2)} <= ${(tol / 2).toExponential(2)}`,
    );
  });

t.test('kv_cache_write in bf16 stores f32ToBf16 of each row in its slot', async (t) => {
  const r = rng(41);
  const kvDim = 16;
  const slots = Int32Array.from([5, 0, 9]);
  const k = randn(3 * kvDim, r);
  const v = randn(3 * kvDim, r);
  const kCache = new Uint16Array(12 * kvDim);
  const vCache = new Uint16Array(12 * kvDim);
  runOp('kv_cache_write.forward', 'cpu', { kCache, vCache, k, v, slots }, { kvDim }, 'bf16');
  const kb = f32ToBf16(k);
  const vb = f32ToBf16(v);
  for (const [i, slot] of slots.entries()) {
    const row = (a: Uint16Array, at: number) => Array.from(a.subarray(at * kvDim, (at + 1) * kvDim));
    t.same(row(kCache, slot), row(kb, i), `K of token ${i} in slot ${slot}`);
    t.same(row(vCache, slot), row(vb, i), `V of token ${i} in slot ${slot}`);
  }
  t.equal(
    kCache.reduce((n, x) => n + (x !== 0 ? 1 : 0), 0),
    kb.reduce((n, x) => n + (x !== 0 ? 1 : 0), 0),
    'no other slot written',
  );
});

t.test('bad cache arguments are refused by name', async (t) => {
  const s = setup({ heads: 4, kvHeads: 2, headDim: 8, blockSize: 4 }, 3);
  const { q, kCache, vCache, blockTables, seqOfToken, nKeys, options } = s;
  const run = (over: object, opts: object = options) =>
    runOp(
      'paged_attention.forward',
      'cpu',
      { q, kCache, vCache, blockTables, seqOfToken, nKeys, ...over },
      opts,
      'bf16',
    );
  t.throws(() => run({ kCache: bf16ToF32(kCache) }), /pagedAttentionForwardBf16: kCache must be a Uint16Array/);
  t.throws(() => run({ blockTables: Int32Array.from([0, 1, 5, 0, 3, 4]) }), /blockTables\[2\] = 5 is out of range/);
  t.throws(() => run({ nKeys: Int32Array.from([1, 7, 13, 9, 3]) }), /nKeys\[2\] = 13 is out of range \[1, 13\)/);
  t.throws(() => run({ vCache: vCache.subarray(1) }), /vCache must have length/);
  t.throws(() => run({}, { ...options, blockSize: 3 }), /kCache length 320 is not a whole number of blocks/);
});
