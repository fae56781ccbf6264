// LayerNorm with weight and bias, as torch.nn.LayerNorm (the Qwen3-VL vision tower's norms):
//   out = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps), var the biased variance of the row.
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

namespace medix::cpu {

// mean[rows] and rstd[rows] receive the row statistics backward needs.
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int64_t rows, int64_t dim, float eps);
// dx += ..., dw += ..., db += ... (any may be null), from the statistics forward saved.
void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int64_t dim);

}  // namespace medix::cpu

namespace medix {

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct LayernormForward : BackendOp<LayernormForward, decltype(cpu::layernorm_forward)> {
  static constexpr const char* name = "layernorm_forward";
  static constexpr OpKind kind = OpKind::Norm;
  static constexpr OpArg args[] = {{"out"}, {"mean"}, {"rstd"}, {"x"}, {"w"}, {"b"}, {"rows"}, {"dim"}, {"eps"}};
};
struct LayernormBackward : BackendOp<LayernormBackward, decltype(cpu::layernorm_backward)> {
  static constexpr const char* name = "layernorm_backward";
  static constexpr OpKind kind = OpKind::Norm;
  static constexpr OpArg args[] = {{"dx"}, {"dw"},   {"db"},   {"dout"}, {"x"},
                                   {"w"},  {"mean"}, {"rstd"}, {"rows"}, {"dim"}};
};

}  // namespace medix
