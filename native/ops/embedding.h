// Token embedding: out[i, :] = table[ids[i], :].
// Backward functions in medix ACCUMULATE (+=) into every gradient output; callers zero them.
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

namespace medix {

namespace cpu {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim);
// dtable[ids[i], :] += dout[i, :]. Deterministic: each dtable column is owned by one thread.
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t n, int64_t dim);

}  // namespace cpu

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct EmbeddingForward : BackendOp<EmbeddingForward, decltype(cpu::embedding_forward)> {
  static constexpr const char* name = "embedding_forward";
  static constexpr OpKind kind = OpKind::Embedding;
  static constexpr OpArg args[] = {{"out"}, {"ids"}, {"table"}, {"n"}, {"dim"}};
};
struct EmbeddingBackward : BackendOp<EmbeddingBackward, decltype(cpu::embedding_backward)> {
  static constexpr const char* name = "embedding_backward";
  static constexpr OpKind kind = OpKind::Embedding;
  static constexpr OpArg args[] = {{"dtable"}, {"dout"}, {"ids"}, {"n"}, {"dim"}};
};

}  // namespace medix
