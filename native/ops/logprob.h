// Fused output head + log-softmax + gather.
//
// For each token t: z = hidden[t] . head^T / temperature (a [V] row of logits),
//   logp[t]    = z[target[t]] - logsumexp(z)
//   entropy[t] = -sum_j p_j log p_j,  p = softmax(z)
// computed in blocks of token_chunk tokens x vocab_chunk vocabulary entries with an online
// log-sum-exp, so the [T, V] logits are never materialised: the extra memory is one block per thread
// (forward: with the block's tokens packed for the gemm and their statistics) plus O(T) statistics.
// target -1 means "no target" (logp = 0, no gradient), e.g. the last token of each packed sequence.
#pragma once
#include <cstddef>
#include <cstdint>
#include "../core/backend_op.h"

namespace medix {

struct LogprobShape {
  int64_t T = 0, hidden = 0, vocab = 0;
  float temperature = 1.0f;
  // The block of the fused walk; 0 takes the direction's default below.
  int64_t token_chunk = 0;
  int64_t vocab_chunk = 0;
};
template <>
struct PointerFree<LogprobShape> : std::true_type {};  // backend_op.h

// Defaults measured on the fused_logprob benchmark (2048 tokens, hidden 512, vocab 151,936, 2 cores
// of an AMD EPYC Zen 4). Forward: each thread's block of 112 vocabulary entries x 1024 tokens (448 KiB)
// stays in its L2 between the gemm that writes it and the statistics that read it. Backward: each
// thread's block of 224 x 512 (448 KiB) stays in its L2 through the logits, d(logits) and the two
// gradient gemms; the thread also holds its block's packed head rows and a T x hidden dhidden buffer.
constexpr int64_t kForwardTokenChunk = 1024, kForwardVocabChunk = 112;
constexpr int64_t kBackwardTokenChunk = 512, kBackwardVocabChunk = 224;

namespace cpu {

// lse[T] is written for backward. entropy may be null. Returns the peak extra bytes used.
size_t logprob_forward(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                       const int32_t* targets, const LogprobShape& s);

// dhidden += d/dhidden, dhead += d/dhead of sum_t (dlogp[t]*logp[t] + dentropy[t]*entropy[t]).
// dentropy/entropy may be null (then the entropy term is absent). Recomputes each logits block.
// Returns the peak extra bytes used.
size_t logprob_backward(float* dhidden, float* dhead, const float* dlogp, const float* dentropy, const float* hidden,
                        const float* head, const int32_t* targets, const float* lse, const float* entropy,
                        const LogprobShape& s);

// Reference and benchmark baseline: materialises all T x V logits with one gemm, then takes each
// row's log-softmax and gathers the target. Same outputs as logprob_forward; returns its extra bytes
// (T * V * 4 for the logits). The logits buffer is kept between calls (and grown when a call needs
// more), so a benchmark that calls it once untimed times the arithmetic, not fresh pages being faulted
// in; calls are serialised.
size_t logprob_forward_naive(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                             const int32_t* targets, const LogprobShape& s);

}  // namespace cpu

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct LogprobForward : BackendOp<LogprobForward, decltype(cpu::logprob_forward)> {
  static constexpr const char* name = "logprob_forward";
  static constexpr OpKind kind = OpKind::LogprobHead;
  static constexpr OpArg args[] = {{"logp"}, {"entropy"}, {"lse"}, {"hidden"}, {"head"}, {"targets"}, {"s"}};
  static double flops(float*, float*, float*, const float*, const float*, const int32_t*, const LogprobShape& s) {
    return 2.0 * s.T * s.hidden * s.vocab;
  }
};
struct LogprobBackward : BackendOp<LogprobBackward, decltype(cpu::logprob_backward)> {
  static constexpr const char* name = "logprob_backward";
  static constexpr OpKind kind = OpKind::LogprobHead;
  static constexpr OpArg args[] = {{"dhidden"}, {"dhead"},   {"dlogp"}, {"dentropy"}, {"hidden"},
                                   {"head"},    {"targets"}, {"lse"},   {"entropy"},  {"s"}};
  static double flops(float*, float*, const float*, const float*, const float*, const float*, const int32_t*,
                      const float*, const float*, const LogprobShape& s) {
    return 6.0 * s.T * s.hidden * s.vocab;
  }
};
// The unfused head (the fused op's reference): the CPU alone registers it (MEDIX_CPU_REFERENCE_OP).
struct LogprobForwardNaive : BackendOp<LogprobForwardNaive, decltype(cpu::logprob_forward_naive)> {
  static constexpr const char* name = "logprob_forward_naive";
  static constexpr OpKind kind = OpKind::LogprobHead;
  static constexpr OpArg args[] = {{"logp"}, {"entropy"}, {"lse"}, {"hidden"}, {"head"}, {"targets"}, {"s"}};
};

}  // namespace medix
