// Benchmark inputs: deterministic values, so that run-to-run comparisons do not depend on them.

/** n values in [-scale, scale) from a linear congruential sequence started at `seed`. */
export function filled(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = (x / 2 ** 31 - 1) * scale;
  }
  return out;
}

/** The log-prob head's inputs: RMSNorm-scale hidden states, a small-initialised head (logits of a few units). */
export function logprobInputs(T: number, H: number, V: number): { hidden: Float32Array; head: Float32Array } {
  return { hidden: filled(T * H, 1, 1.7), head: filled(V * H, 2, 0.05) };
}
