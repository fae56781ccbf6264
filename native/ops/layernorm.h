// LayerNorm with weight and bias, as torch.nn.LayerNorm (the Qwen3-VL vision tower's norms):
//   out = (x - mean) * rstd * w + b,  rstd = 1 / sqrt(var + eps), var the biased variance of the row.
#pragma once
#include <cstdint>

namespace medix::cpu {

// mean[rows] and rstd[rows] receive the row statistics backward needs.
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int64_t rows, int64_t dim, float eps);
// dx += ..., dw += ..., db += ... (any may be null), from the statistics forward saved.
void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int64_t dim);

}  // namespace medix::cpu
