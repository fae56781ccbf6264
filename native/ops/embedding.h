// Token embedding: out[i, :] = table[ids[i], :].
// Backward functions in medix ACCUMULATE (+=) into every gradient output; callers zero them.
#pragma once
#include <cstdint>

namespace medix {

namespace cpu {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim);
// dtable[ids[i], :] += dout[i, :]. Deterministic: each dtable column is owned by one thread.
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t n, int64_t dim);

}  // namespace cpu
}  // namespace medix
