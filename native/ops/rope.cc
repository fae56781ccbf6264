// STUB: replaced by the real implementation
#include "rope.h"
#include "../core/error.h"

namespace medix::cpu {

void rope_forward(float* out, const float* x, const int32_t* pos, int64_t T, int64_t n_heads,
                  const RopeSpec& spec) { fail("rope: stub"); }

void rope_backward(float* dx, const float* dout, const int32_t* pos, int64_t T, int64_t n_heads,
                   const RopeSpec& spec) { fail("rope: stub"); }

}  // namespace medix::cpu
