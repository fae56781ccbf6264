// Linear layer in Hugging Face layout: y[T, out] = x[T, in] * W[out, in]^T (+ b[out]).
#pragma once
#include <cstdint>

namespace medix {

namespace cpu {

void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out);
// dx += dy W; dW += dy^T x; db += sum_t dy (dx, db may be null).
void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                     int64_t in, int64_t out);

}  // namespace cpu
}  // namespace medix
