// Linear layer in Hugging Face layout: y[T, out] = x[T, in] * W[out, in]^T (+ b[out]).
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

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

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct LinearForward : BackendOp<LinearForward, decltype(cpu::linear_forward)> {
  static constexpr const char* name = "linear_forward";
  static constexpr OpKind kind = OpKind::Linear;
  static constexpr OpArg args[] = {{"y"}, {"x"}, {"W"}, {"b"}, {"T"}, {"in"}, {"out"}};
  // Multiply-adds counted twice (one multiply, one add), as FLOPs.
  static double flops(float*, const float*, const float*, const float*, int64_t T, int64_t in, int64_t out) {
    return 2.0 * T * in * out;
  }
};
struct LinearBackward : BackendOp<LinearBackward, decltype(cpu::linear_backward)> {
  static constexpr const char* name = "linear_backward";
  static constexpr OpKind kind = OpKind::Linear;
  static constexpr OpArg args[] = {{"dx"}, {"dW"}, {"db"}, {"dy"}, {"x"}, {"W"}, {"T"}, {"in"}, {"out"}};
  // Multiply-adds counted twice (one multiply, one add), as FLOPs.
  static double flops(float* dx, float* dW, float*, const float*, const float*, const float*, int64_t T, int64_t in,
                      int64_t out) {
    return ((dx ? 2.0 : 0.0) + (dW ? 2.0 : 0.0)) * T * in * out;
  }
};
struct LinearForwardBf16 : BackendOp<LinearForwardBf16, decltype(cpu::linear_forward_bf16)> {
  static constexpr const char* name = "linear_forward_bf16";
  static constexpr OpKind kind = OpKind::Linear;
  static constexpr OpArg args[] = {{"y"}, {"x"}, {"W"}, {"b"}, {"T"}, {"in"}, {"out"}};
  // Multiply-adds counted twice (one multiply, one add), as FLOPs.
  static double flops(float*, const float*, const uint16_t*, const float*, int64_t T, int64_t in, int64_t out) {
    return 2.0 * T * in * out;
  }
};
struct LinearBackwardBf16 : BackendOp<LinearBackwardBf16, decltype(cpu::linear_backward_bf16)> {
  static constexpr const char* name = "linear_backward_bf16";
  static constexpr OpKind kind = OpKind::Linear;
  static constexpr OpArg args[] = {{"dx"}, {"dW"}, {"db"}, {"dy"}, {"x"}, {"W"}, {"T"}, {"in"}, {"out"}};
  // Multiply-adds counted twice (one multiply, one add), as FLOPs.
  static double flops(float* dx, float*, float*, const float*, const float*, const uint16_t*, int64_t T, int64_t in,
                      int64_t out) {
    return (dx ? 4.0 : 2.0) * T * in * out;
  }
};

}  // namespace medix
