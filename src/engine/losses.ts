// Typed face of the fused log-prob head and the token losses of RL and SFT
// (native/ops/logprob.h, native/ops/loss.h; the head through runOp, the losses native/bindings/loss_ops.cc), float32 on the CPU.
//
// Log-probs: for token t, z = hidden[t] · head^T / temperature over the whole vocabulary,
// logp[t] = z[target[t]] − logsumexp(z), entropy[t] = −Σ p log p with p = softmax(z). The fused form
// walks z in tokenChunk × vocabChunk blocks with an online log-sum-exp and never holds all T × V
// logits; backward recomputes each block. These run on a worker thread and return promises; while
// one is pending do not change the arrays passed to it (targets are copied and may be reused).
//
// Losses: per-token terms over a packed batch (cuSeqlens delimits sequences, mask selects the
// response tokens that count), reduced by one of the aggregation modes; they return the loss, the
// metrics and d(loss)/d(logp) (and d(loss)/d(entropy)), which logprobBackward turns into model
// gradients. Bad arguments (wrong array type or length, NaN/Inf, a target outside [−1, vocab), a
// mask value other than 0/1, invalid cuSeqlens or options) throw an Error naming the function and
// the argument (the promise-returning functions throw before returning a promise).
import { native } from './native.js';
import { runOp, runOpAsync } from './ops.js';

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

/** Token reduction. token-mean: Σ mask·x / N_tok. seq-mean-token-mean: mean over sequences of each sequence's masked mean. seq-mean-token-sum: mean over sequences of each sequence's masked sum. */
export type LossAgg = 'token-mean' | 'seq-mean-token-mean' | 'seq-mean-token-sum';

/**
 * ppo: clipped surrogate max(−A·r, −A·clip(r, 1−clipLow, 1+clipHigh)), r = exp(logp − oldLogp) per token.
 * gspo: the same with one ratio per sequence, exp(mean masked log-ratio), gradient through each token's own logp.
 * cispo: −stopgrad(clip(r))·A·logp, a REINFORCE term weighted by the clipped ratio.
 */
export type PolicyLossKind = 'ppo' | 'gspo' | 'cispo';

/**
 * Per-token estimate of KL(π‖ref) from x = logp − refLogp. k1: x. abs: |x|. mse: x²/2.
 * low_var_kl (k3): exp(−x) + x − 1, with the log-ratio clamped to ±20 and the value to ±10.
 */
export type KlEstimator = 'none' | 'k1' | 'abs' | 'mse' | 'low_var_kl';

export interface AggOptions {
  agg: LossAgg;
  /**
   * Token normaliser of token-mean when > 0 (default: this batch's masked-token count). Give the
   * whole mini-batch's count to every micro-batch and their losses and gradients add up to the
   * mini-batch's.
   */
  globalTokens?: number;
  /** Sequence normaliser of the seq-mean modes when > 0 (default: this batch's sequences with a masked-in token). */
  globalSeqs?: number;
}

export interface PolicyLossOptions extends AggOptions {
  kind: PolicyLossKind;
  /** Lower clip: ratios below 1 − clipLow are clipped; in [0, 1). */
  clipLow: number;
  /** Upper clip: ratios above 1 + clipHigh are clipped (DAPO clip-higher uses 0.28); >= 0. */
  clipHigh: number;
  /** ppo only: c > 1 caps the loss of negative-advantage tokens at −A·c (dual clip); 0 (default) disables. */
  dualClip?: number;
  /** KL penalty against refLogp (default 'none'); needs inputs.refLogp. */
  kl?: KlEstimator;
  klCoef?: number;
  /** Entropy bonus: the loss subtracts entropyCoef × aggregated entropy; needs inputs.entropy when != 0. */
  entropyCoef?: number;
}

export interface PolicyLossInputs {
  /** [T] current policy log-probs. */
  logp: Float32Array;
  /** [T] behaviour (rollout) policy log-probs. */
  oldLogp: Float32Array;
  /** [T] reference policy log-probs, required when options.kl is not 'none'. */
  refLogp?: Float32Array;
  /** [T] per-token advantages. */
  advantages: Float32Array;
  /** [T] 1 for tokens that count, 0 otherwise. */
  mask: Float32Array;
  /** [T] per-token entropy (from logprobForward): reported as a metric, and the entropy bonus's input. */
  entropy?: Float32Array;
  /** [nSeqs + 1] sequence offsets into the T tokens. */
  cuSeqlens: Int32Array;
}

export interface PolicyLossMetrics {
  /** Aggregated policy-gradient loss. */
  pg_loss: number;
  /** Aggregated KL estimate (0 without a KL estimator). */
  kl_loss: number;
  /** Aggregated entropy (0 when inputs.entropy is absent). */
  entropy: number;
  /** Masked fraction of tokens whose clipped term is the larger (ppo/gspo), or whose ratio exceeded 1 + clipHigh (cispo). */
  pg_clipfrac_higher: number;
  /** Masked fraction of tokens capped by the dual clip (ppo), or whose ratio fell below 1 − clipLow (cispo). */
  pg_clipfrac_lower: number;
  /** Masked mean of oldLogp − logp (log-ratio clamped to ±20 for ppo and cispo). */
  ppo_kl: number;
  /** Masked-in tokens of this batch. */
  tokens: number;
}

export interface PolicyLossResult {
  /** pg_loss + klCoef·kl_loss − entropyCoef·entropy. */
  loss: number;
  /** The loss terms (aggregated like the loss) and diagnostics (plain masked means over this batch). */
  metrics: PolicyLossMetrics;
  /** [T] d loss / d logp. */
  dlogp: Float32Array;
  /** [T] d loss / d entropy (= −entropyCoef × aggregation weight), present when inputs.entropy is. */
  dentropy?: Float32Array;
}

export interface SftLossResult {
  /** Aggregated negative log-likelihood, aggregate(−logp). */
  loss: number;
  /** [T] d loss / d logp. */
  dlogp: Float32Array;
}

interface LossAddon {
  policyLoss(inputs: PolicyLossInputs, o: PolicyLossOptions): PolicyLossResult;
  sftLoss(logp: Float32Array, mask: Float32Array, cuSeqlens: Int32Array, o: AggOptions): SftLossResult;
  klValues(logp: Float32Array, refLogp: Float32Array, o: { kl: KlEstimator }): Float32Array;
}

const ops = native<LossAddon>();

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

/**
 * RL policy loss (ppo, gspo or cispo) with optional KL penalty and entropy bonus: value, metrics and
 * d loss / d logp (and d loss / d entropy). Per-token log-ratios are clamped (±20, GSPO's sequence
 * ratio at 10) so extreme inputs stay finite. An empty mask gives loss 0 and zero gradients.
 */
export function policyLoss(inputs: PolicyLossInputs, o: PolicyLossOptions): PolicyLossResult {
  return ops.policyLoss(inputs, o);
}

/** Supervised fine-tuning loss aggregate(−logp) over the masked tokens, and d loss / d logp. */
export function sftLoss(logp: Float32Array, mask: Float32Array, cuSeqlens: Int32Array, o: AggOptions): SftLossResult {
  return ops.sftLoss(logp, mask, cuSeqlens, o);
}

/**
 * The per-token KL estimate of policyLoss's KL term (the same native definition) without a loss
 * around it: what KL in the reward subtracts, token by token.
 */
export function klValues(logp: Float32Array, refLogp: Float32Array, estimator: KlEstimator): Float32Array {
  return ops.klValues(logp, refLogp, { kl: estimator });
}
