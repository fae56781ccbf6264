// Linear layer in Hugging Face layout: y[T, out] = x[T, in] * W[out, in]^T (+ b[out]).
#pragma once
#include <cstdint>

namespace medix {

namespace cpu {

void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out);
// dx += dy W; dW += dy^T x; db += sum_t dy (dx, db may be null).
void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                     int64_t in, int64_t out);

// The same with bf16 weights (core/bf16.h) and f32 activations, accumulating in f32: the results of
// the f32 ops on the widened W up to the order of the f32 sums (exactly their bits at T <= kGemvMaxRows
// in forward). dW (f32, the master gradient) is dy^T x as in the f32 op; dx uses the bf16 W.
// These are the reference; a backend may also round the activations to bf16 for its products (the
// CUDA backend on cuBLASLt does, kernels/kernels.h), which moves y and dx (one rounded factor) by at
// most 2^-8 times their sums of magnitudes, and dW (dy and x both rounded) by 2^-7 + 2^-16 times its.
void linear_forward_bf16(float* y, const float* x, const uint16_t* W, const float* b, int64_t T, int64_t in,
                         int64_t out);
void linear_backward_bf16(float* dx, float* dW, float* db, const float* dy, const float* x, const uint16_t* W,
                          int64_t T, int64_t in, int64_t out);

}  // namespace cpu
}  // namespace medix
