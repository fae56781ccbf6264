// Typed face of causal grouped-query attention over packed variable-length sequences
// (native/ops/attention.h; its op-table entry in attention.cc), in float32 on the CPU, deterministic
// (same inputs, same bits, whatever the thread count).
//
// Layout: T tokens of several sequences packed back to back; cuSeqlens [nSeqs + 1] holds the
// offsets (sequence s is tokens cuSeqlens[s] .. cuSeqlens[s+1]-1, empty sequences allowed).
// q is [T, heads, headDim]; k and v are [T, kvHeads, headDim]; query head h reads kv head
// floor(h / (heads / kvHeads)). A token attends to the tokens of its own sequence at or before it.
//
// Each function comes in two forms: synchronous, and *Async, which runs the same computation on a
// libuv worker thread so a long sequence does not stall the event loop. The results are identical.
// While an *Async call is pending, do not change or transfer the arrays passed to it (it reads
// them in place); cuSeqlens is copied and may be reused at once. Bad arguments (wrong array type
// or length, NaN/Inf, invalid cuSeqlens, heads not a multiple of kvHeads) throw an Error naming
// the function and the argument; the *Async forms reject with it instead.
import { runOp, runOpAsync } from './ops.js';

export interface AttentionOptions {
  /** Query heads per token. */
  heads: number;
  /** Key/value heads per token; must divide heads (heads === kvHeads is plain multi-head attention). */
  kvHeads: number;
  headDim: number;
  /** Multiplies q·k before the softmax; default 1 / sqrt(headDim). Must be > 0. */
  scale?: number;
  /** Default true. False: every query sees all keys of its own sequence (the vision tower, one image each). */
  causal?: boolean;
}

export interface AttentionForwardResult {
  /** [T, heads, headDim]: softmax(scale * q k^T, causal within each sequence) v. */
  out: Float32Array;
  /**
   * [T, heads]: log-sum-exp of the scaled scores of each query row over the keys it sees. The
   * backward pass recomputes the probabilities from q, k and lse rather than storing them.
   */
  lse: Float32Array;
}

export interface AttentionBackwardResult {
  /** [T, heads, headDim] */
  dq: Float32Array;
  /** [T, kvHeads, headDim]: summed over the query heads that share each kv head. */
  dk: Float32Array;
  /** [T, kvHeads, headDim] */
  dv: Float32Array;
}

/** Causal attention output and per-row log-sum-exp; T is q.length / (heads * headDim). */
export function attentionForward(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  cuSeqlens: Int32Array,
  o: AttentionOptions,
): AttentionForwardResult {
  const { out, lse } = runOp<AttentionForwardResult>('attention.forward', 'cpu', { q, k, v, cuSeqlens }, o);
  return { out, lse };
}

/** attentionForward on a worker thread. */
export async function attentionForwardAsync(
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  cuSeqlens: Int32Array,
  o: AttentionOptions,
): Promise<AttentionForwardResult> {
  const { out, lse } = await runOpAsync<AttentionForwardResult>('attention.forward', 'cpu', { q, k, v, cuSeqlens }, o);
  return { out, lse };
}

/**
 * Gradients of attentionForward with respect to q, k and v, given dout (the gradient of its
 * output) and the out and lse it returned for the same q, k, v.
 */
export function attentionBackward(
  dout: Float32Array,
  out: Float32Array,
  lse: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  cuSeqlens: Int32Array,
  o: AttentionOptions,
): AttentionBackwardResult {
  const inputs = { dout, out, lse, q, k, v, cuSeqlens };
  const { dq, dk, dv } = runOp<AttentionBackwardResult>('attention.backward', 'cpu', inputs, o);
  return { dq, dk, dv };
}

/** attentionBackward on a worker thread. */
export async function attentionBackwardAsync(
  dout: Float32Array,
  out: Float32Array,
  lse: Float32Array,
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  cuSeqlens: Int32Array,
  o: AttentionOptions,
): Promise<AttentionBackwardResult> {
  const inputs = { dout, out, lse, q, k, v, cuSeqlens };
  const { dq, dk, dv } = await runOpAsync<AttentionBackwardResult>('attention.backward', 'cpu', inputs, o);
  return { dq, dk, dv };
}
