// RMSNorm as Qwen3 uses it: y = x / sqrt(mean(x^2) + eps) * w, over the last dimension.
// The per-head q/k norm of Qwen3 attention is the same op with rows = tokens*heads, dim = head_dim.
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

namespace medix {

namespace cpu {

// rstd[rows] receives 1/sqrt(mean(x^2)+eps) for backward (may be null).
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim, float eps);
// dx += ..., dw += ... (either may be null). Uses the rstd saved by forward.
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                      int64_t rows, int64_t dim);

}  // namespace cpu

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct RmsnormForward : BackendOp<RmsnormForward, decltype(cpu::rmsnorm_forward)> {
  static constexpr const char* name = "rmsnorm_forward";
  static constexpr OpKind kind = OpKind::Norm;
  static constexpr OpArg args[] = {{"out"}, {"rstd"}, {"x"}, {"w"}, {"rows"}, {"dim"}, {"eps"}};
};
struct RmsnormBackward : BackendOp<RmsnormBackward, decltype(cpu::rmsnorm_backward)> {
  static constexpr const char* name = "rmsnorm_backward";
  static constexpr OpKind kind = OpKind::Norm;
  static constexpr OpArg args[] = {{"dx"}, {"dw"}, {"dout"}, {"x"}, {"w"}, {"rstd"}, {"rows"}, {"dim"}};
};

}  // namespace medix
