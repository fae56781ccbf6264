// STUB: replaced by the real implementation
#include "swiglu.h"
#include "../core/error.h"

namespace medix::cpu {

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) { fail("swiglu: stub"); }

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) { fail("swiglu: stub"); }

}  // namespace medix::cpu
