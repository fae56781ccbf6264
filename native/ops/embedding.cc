// STUB: replaced by the real implementation
#include "embedding.h"
#include "../core/error.h"

namespace medix::cpu {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim) { fail("embedding: stub"); }

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t n, int64_t dim) { fail("embedding: stub"); }

}  // namespace medix::cpu
