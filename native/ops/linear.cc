// STUB: replaced by the real implementation
#include "linear.h"
#include "../core/error.h"

namespace medix::cpu {

void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in,
                    int64_t out) { fail("linear: stub"); }

void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W,
                     int64_t T, int64_t in, int64_t out) { fail("linear: stub"); }

}  // namespace medix::cpu
