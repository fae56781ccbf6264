// Typed face of the fused log-prob head (native/ops/logprob.h, native/bindings/logprob_ops.cc),
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
import { native } from './native.js';

export interface LogprobOptions {
  /** Token count; defaults to targets.length and must equal it when given. */
  T?: number;
  /** Hidden size: hidden is [T, hidden], head is [vocab, hidden]. */
  hidden: number;
  vocab: number;
  /** Logits are divided by it before the softmax (sampling temperature); default 1, must be > 0. */
  temperature?: number;
  /** Tokens per block of the fused walk (default: the native default, tuned for speed). */
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
  /** Extra memory the call allocated at its peak, in bytes (block buffer and per-token statistics; not gemm's packing). */
  peakBytes: number;
}

export interface LogprobBackwardResult {
  /** [T, hidden]: d/d hidden of Σ_t (dlogp[t]·logp[t] + dentropy[t]·entropy[t]). */
  dhidden: Float32Array;
  /** [vocab, hidden]: the same with respect to head. */
  dhead: Float32Array;
  peakBytes: number;
}

interface LogprobAddon {
  logprobForward(
    hidden: Float32Array,
    head: Float32Array,
    targets: Int32Array,
    o: LogprobOptions,
  ): Promise<LogprobForwardResult>;
  logprobForwardSync(
    hidden: Float32Array,
    head: Float32Array,
    targets: Int32Array,
    o: LogprobOptions,
  ): LogprobForwardResult;
  logprobNaive(
    hidden: Float32Array,
    head: Float32Array,
    targets: Int32Array,
    o: LogprobOptions,
  ): Promise<LogprobForwardResult>;
  logprobBackward(
    dlogp: Float32Array,
    dentropy: Float32Array | null,
    hidden: Float32Array,
    head: Float32Array,
    targets: Int32Array,
    lse: Float32Array,
    entropy: Float32Array | null,
    o: LogprobOptions,
  ): Promise<LogprobBackwardResult>;
}

const ops = native<LogprobAddon>();

/** Fused head + log-softmax + gather: per-token log-prob of the target (and entropy), without the [T, V] logits. */
export function logprobForward(
  hidden: Float32Array,
  head: Float32Array,
  targets: Int32Array,
  o: LogprobOptions,
): Promise<LogprobForwardResult> {
  return ops.logprobForward(hidden, head, targets, o);
}

/** logprobForward on the calling thread: for small problems (tests, tools), where a promise costs more than the work. */
export function logprobForwardSync(
  hidden: Float32Array,
  head: Float32Array,
  targets: Int32Array,
  o: LogprobOptions,
): LogprobForwardResult {
  return ops.logprobForwardSync(hidden, head, targets, o);
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
  return ops.logprobNaive(hidden, head, targets, o);
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
  return ops.logprobBackward(dlogp, entropy?.dentropy ?? null, hidden, head, targets, lse, entropy?.entropy ?? null, o);
}
