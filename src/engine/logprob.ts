// Typed face of the fused log-prob head (native/ops/logprob.h, run through runOp: its op-table entry in native/ops/logprob.cc),
// float32 on the CPU. The token losses that consume its output are plain TypeScript (src/rl:
// policy-loss.ts, sft-loss.ts); their d(loss)/d(logp) comes back here through logprobBackward.
//
// For token t, z = hidden[t] · head^T / temperature over the whole vocabulary,
// logp[t] = z[target[t]] − logsumexp(z), entropy[t] = −Σ p log p with p = softmax(z). The fused form
// walks z in tokenChunk × vocabChunk blocks with an online log-sum-exp and never holds all T × V
// logits; backward recomputes each block. These run on a worker thread and return promises; while
// one is pending do not change the arrays passed to it (targets are copied and may be reused).
// Bad arguments (wrong array type or length, NaN/Inf, a target outside [−1, vocab), invalid
// options) throw an Error naming the function and the argument before a promise is returned.
import { runOp, runOpAsync } from './ops.js';

export interface LogprobOptions {
  /** Token count; defaults to targets.length and must equal it when given. */
  T?: number;
  /** Hidden size: hidden is [T, hidden], head is [vocab, hidden]. */
  hidden: number;
  vocab: number;
  /** Logits are divided by it before the softmax (sampling temperature); default 1, must be > 0. */
  temperature?: number;
  /** Tokens per block of the fused walk (default: the native default of each direction, tuned for speed). */
  tokenChunk?: number;
  /** Vocabulary entries per block of the fused walk (default: the native default). */
  vocabChunk?: number;
  /** Also return the per-token entropy (forward only). Default false. */
  entropy?: boolean;
}

export interface LogprobForwardResult {
  /** [T]: log-softmax at the target; 0 where the target is −1 (no target, e.g. a sequence's last token). */
  logp: Float32Array;
  /** [T]: entropy of the softmax, present when options.entropy (computed for target −1 tokens too). */
  entropy?: Float32Array;
  /** [T]: log-sum-exp of each token's logits, needed by logprobBackward. */
  lse: Float32Array;
  /** Extra memory the call allocated at its peak, in bytes: block buffers (forward: one per thread, with its tokens
   * packed for the register kernel) and per-token statistics; not gemm's own packing buffers. */
  peakBytes: number;
}

export interface LogprobBackwardResult {
  /** [T, hidden]: d/d hidden of Σ_t (dlogp[t]·logp[t] + dentropy[t]·entropy[t]). */
  dhidden: Float32Array;
  /** [vocab, hidden]: the same with respect to head. */
  dhead: Float32Array;
  peakBytes: number;
}

type ForwardOutputs = Omit<LogprobForwardResult, 'peakBytes'>;

// runOp's result as logprobForward returns it: the outputs, and the scalar result as peakBytes.
function forwardResult({ logp, lse, entropy, value }: ForwardOutputs & { value: number }): LogprobForwardResult {
  return entropy ? { logp, entropy, lse, peakBytes: value } : { logp, lse, peakBytes: value };
}

/** Fused head + log-softmax + gather: per-token log-prob of the target (and entropy), without the [T, V] logits. */
export function logprobForward(
  hidden: Float32Array,
  head: Float32Array,
  targets: Int32Array,
  o: LogprobOptions,
): Promise<LogprobForwardResult> {
  return runOpAsync<ForwardOutputs>('logprob.forward', 'cpu', { hidden, head, targets }, o).then(forwardResult);
}

/** logprobForward on the calling thread: for small problems (tests, tools), where a promise costs more than the work. */
export function logprobForwardSync(
  hidden: Float32Array,
  head: Float32Array,
  targets: Int32Array,
  o: LogprobOptions,
): LogprobForwardResult {
  return forwardResult(runOp<ForwardOutputs>('logprob.forward', 'cpu', { hidden, head, targets }, o));
}

/**
 * The same outputs computed the plain way: all T × V logits from one gemm, then each row's
 * log-softmax. A reference for tests and the baseline of the fused_logprob benchmark (T·V·4 bytes).
 */
export function logprobNaive(
  hidden: Float32Array,
  head: Float32Array,
  targets: Int32Array,
  o: LogprobOptions,
): Promise<LogprobForwardResult> {
  return runOpAsync<ForwardOutputs>('logprob_naive.forward', 'cpu', { hidden, head, targets }, o).then(forwardResult);
}

/** Gradient-carrying input of the entropy term: the entropy logprobForward returned and d loss / d entropy. */
export interface EntropyGrad {
  entropy: Float32Array;
  dentropy: Float32Array;
}

/**
 * Gradients of Σ_t dlogp[t]·logp[t] (+ dentropy[t]·entropy[t]) with respect to hidden and head,
 * given the lse (and entropy) that logprobForward returned for the same inputs. Tokens with target
 * −1 pass no gradient through logp (their entropy term still counts).
 */
export function logprobBackward(
  dlogp: Float32Array,
  hidden: Float32Array,
  head: Float32Array,
  targets: Int32Array,
  lse: Float32Array,
  o: LogprobOptions,
  entropy?: EntropyGrad,
): Promise<LogprobBackwardResult> {
  const inputs = { dlogp, dentropy: entropy?.dentropy, hidden, head, targets, lse, entropy: entropy?.entropy };
  return runOpAsync<LogprobBackwardResult>('logprob.backward', 'cpu', inputs, o).then(({ dhidden, dhead, value }) => ({
    dhidden,
    dhead,
    peakBytes: value,
  }));
}
