// Paged attention over an f32 cache through its op-table entry, in the shapes its CPU kernel tiles
// differently: a prefill run of many tokens of one sequence (a unit of several tokens' rows), decode
// rows of other sequences in the same batch, kv-head groups of 1 (odd row counts), 2, 4 and 32 (more
// rows than a tile), head dims with and without a partial vector and a whole 64-dim register tile.
// Each output against paged_attention.h's definition in double; each token's rows the same bits
// computed alone as in the batch (a request's tokens must not depend on what it is batched with).
import t from 'tap';

import { runOp } from '../../src/engine/ops.js';
import { randn, rng, sameBits } from '../helpers/numeric.js';
import { type PagedAttentionCase, pagedAttentionBound, pagedAttentionDirect } from '../helpers/paged-attention.js';

interface Shape {
  heads: number;
  kvHeads: number;
  headDim: number;
}

const blockSize = 8;
const maxBlocks = 6;

// Sequence 0: a prompt of 37 tokens prefilled at once (keys 1..37), sequence 1: one decode row at
// 41 keys, sequence 2: a run of 3 tokens continuing at 13..15 keys, sequence 0 again at its 38th
// key (a second run of the same sequence, after the others). Blocks are shuffled in the cache.
function setup(s: Shape, seed: number) {
  const r = rng(seed);
  const kvDim = s.kvHeads * s.headDim;
  const tables = [
    [3, 9, 0, 14, 7, 11],
    [1, 5, 12, 2, 16, 6],
    [8, 4, 15, 10, 13, 17],
  ];
  const tokens: [number, number][] = []; // [sequence, visible keys]
  for (let i = 1; i <= 37; i++) tokens.push([0, i]);
  tokens.push([1, 41]);
  for (let i = 13; i <= 15; i++) tokens.push([2, i]);
  tokens.push([0, 38]);
  const T = tokens.length;
  const c: PagedAttentionCase = {
    T,
    q: randn(T * s.heads * s.headDim, r),
    blockTables: Int32Array.from(tables.flat()),
    seqOfToken: Int32Array.from(tokens.map((x) => x[0])),
    nKeys: Int32Array.from(tokens.map((x) => x[1])),
    options: { ...s, blockSize, maxBlocks },
  };
  const kCache = randn(18 * blockSize * kvDim, r);
  const vCache = randn(18 * blockSize * kvDim, r);
  return { c, kCache, vCache };
}

function attend(c: PagedAttentionCase, kCache: Float32Array, vCache: Float32Array): Float32Array {
  const { q, blockTables, seqOfToken, nKeys, options } = c;
  return runOp<{ out: Float32Array }>(
    'paged_attention.forward',
    'cpu',
    { q, kCache, vCache, blockTables, seqOfToken, nKeys },
    options,
  ).out;
}

for (const shape of [
  { heads: 3, kvHeads: 3, headDim: 20 },
  { heads: 4, kvHeads: 2, headDim: 64 },
  { heads: 8, kvHeads: 2, headDim: 72 },
  { heads: 32, kvHeads: 1, headDim: 9 },
])
  t.test(`heads ${shape.heads}, kv heads ${shape.kvHeads}, head_dim ${shape.headDim}`, async (t) => {
    const { c, kCache, vCache } = setup(shape, 7 + shape.headDim);
    const out = attend(c, kCache, vCache);
    const exact = pagedAttentionDirect(c, kCache, vCache);
    const bound = pagedAttentionBound(shape.headDim, 41);
    const worst = out.reduce((m, v, i) => Math.max(m, Math.abs(v - exact[i])), 0);
    t.ok(worst <= bound, `worst |out - direct formula| ${worst.toExponential(2)} <= ${bound.toExponential(2)}`);
    // Each token alone: its rows' bits equal the batch's.
    const row = shape.heads * shape.headDim;
    let differing = 0;
    for (let i = 0; i < c.T; i++) {
      const alone: PagedAttentionCase = {
        ...c,
        T: 1,
        q: c.q.subarray(i * row, (i + 1) * row),
        seqOfToken: c.seqOfToken.subarray(i, i + 1),
        nKeys: c.nKeys.subarray(i, i + 1),
      };
      if (!sameBits(attend(alone, kCache, vCache), out.subarray(i * row, (i + 1) * row))) differing++;
    }
    t.equal(differing, 0, `tokens whose output alone differs from the batch's (of ${c.T})`);
  });
