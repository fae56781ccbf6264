// paged_attention.h's definition in double, and how far an f32 evaluation of it may stray, for the
// paged attention tests (f32 and bf16 caches).

const u32 = 2 ** -24; // f32 unit roundoff

export interface PagedAttentionCase {
  T: number;
  q: Float32Array;
  blockTables: Int32Array;
  seqOfToken: Int32Array;
  nKeys: Int32Array;
  options: { heads: number; kvHeads: number; headDim: number; blockSize: number; maxBlocks: number };
}

/**
 * Query t, head h attends to the first nKeys[t] keys of its sequence (key j in slot
 * table[j / blockSize] * blockSize + j % blockSize) of kv head h / group, scores scaled by 1/sqrt(D).
 */
export function pagedAttentionDirect(s: PagedAttentionCase, k: Float32Array, v: Float32Array): Float64Array {
  const { heads, kvHeads, headDim: D, blockSize, maxBlocks } = s.options;
  const group = heads / kvHeads;
  const out = new Float64Array(s.T * heads * D);
  for (let t = 0; t < s.T; t++)
    for (let h = 0; h < heads; h++) {
      const kvh = Math.floor(h / group);
      const at = (j: number) => {
        const slot = s.blockTables[s.seqOfToken[t] * maxBlocks + Math.floor(j / blockSize)] * blockSize;
        return (slot + (j % blockSize)) * kvHeads * D + kvh * D;
      };
      const scores = Array.from({ length: s.nKeys[t] }, (_, j) => {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += s.q[(t * heads + h) * D + d] * k[at(j) + d];
        return dot / Math.sqrt(D);
      });
      const m = Math.max(...scores);
      const e = scores.map((x) => Math.exp(x - m));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let d = 0; d < D; d++) out[(t * heads + h) * D + d] = e.reduce((a, p, j) => a + (p / sum) * v[at(j) + d], 0);
    }
  return out;
}

/**
 * Bound on |f32 result - exact| with |q|, |k|, |v| < 1 and at most maxKeys keys: a score
 * s = scale * sum_d q_d k_d is off by at most D u scale D; a softmax weight p_j moves by at most
 * p_j (2 max|ds| + 4u) (the max subtracted, exp, sum over at most n keys: n u more), so an output
 * sum_j p_j v_j by at most 2 max|ds| + (n + 4) u, plus its own sum's n u.
 */
export function pagedAttentionBound(D: number, maxKeys: number): number {
  const dScore = D * D * u32 * (1 / Math.sqrt(D));
  return 2 * dScore + (2 * maxKeys + 4) * u32;
}
