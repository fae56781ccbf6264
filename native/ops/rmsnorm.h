// RMSNorm as Qwen3 uses it: y = x / sqrt(mean(x^2) + eps) * w, over the last dimension.
// The per-head q/k norm of Qwen3 attention is the same op with rows = tokens*heads, dim = head_dim.
#pragma once
#include <cstdint>

namespace medix {

namespace cpu {

// rstd[rows] receives 1/sqrt(mean(x^2)+eps) for backward (may be null).
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim, float eps);
// dx += ..., dw += ... (either may be null). Uses the rstd saved by forward.
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                      int64_t rows, int64_t dim);

}  // namespace cpu
}  // namespace medix
