// RMSNorm (rmsnorm.h), forward and backward: rstd = 1 / sqrt(mean(x^2) + eps), out = w * (x * rstd).
// The per-head q/k norm is the same op with rows = tokens * heads and dim = head_dim.
//
// One warp per row: rows are short (128 for q/k norm, a few thousand for the hidden state), and a
// warp needs no shared memory or block barrier. Sums are fp32 per lane, then a butterfly: a fixed
// order (the CPU sums in double, so the two agree to a few fp32 ulps of the mean).
#include <algorithm>

#include "backend_op.cuh"
#include "common.cuh"
#include "ops/rmsnorm.h"

namespace medix::cuda {
namespace {

constexpr int kRowsPerBlock = 8;  // warps per block

__global__ void rmsnorm_forward_kernel(float* out, float* rstd, const float* x, const float* w, int64_t rows,
                                       int64_t dim, float eps) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float* xr = x + r * dim;
  float ss = 0.0f;
  for (int64_t i = lane; i < dim; i += 32) ss += xr[i] * xr[i];
  ss = warp_sum(ss);
  const float rs = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
  if (rstd && lane == 0) rstd[r] = rs;
  float* yr = out + r * dim;
  for (int64_t i = lane; i < dim; i += 32) yr[i] = w[i] * (xr[i] * rs);  // normalise, then scale (as HF)
}

// dx = rstd * (g - xhat * mean(g * xhat)) with g = dout * w, xhat = x * rstd.
__global__ void rmsnorm_dx_kernel(float* dx, const float* dout, const float* x, const float* w, const float* rstd,
                                  int64_t rows, int64_t dim) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float* dr = dout + r * dim;
  const float* xr = x + r * dim;
  float dot = 0.0f;
  for (int64_t i = lane; i < dim; i += 32) dot += dr[i] * w[i] * xr[i];
  dot = warp_sum(dot);
  const float rs = rstd[r];
  const float m = dot * rs / static_cast<float>(dim);
  float* dxr = dx + r * dim;
  for (int64_t i = lane; i < dim; i += 32) dxr[i] += rs * (dr[i] * w[i] - xr[i] * rs * m);
}

// dw[i] = sum_r dout[r,i] x[r,i] rstd[r], in two passes with a fixed split: chunk c (blockIdx.y) sums
// its rows in order into partial[c, i]; then each column adds the chunks in order.
__global__ void rmsnorm_dw_partial_kernel(float* partial, const float* dout, const float* x, const float* rstd,
                                          int64_t rows, int64_t dim, int64_t chunks) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t c = blockIdx.y;
  if (i >= dim) return;
  float s = 0.0f;
  for (int64_t r = c * rows / chunks; r < (c + 1) * rows / chunks; ++r)
    s += dout[r * dim + i] * (x[r * dim + i] * rstd[r]);
  partial[c * dim + i] = s;
}

__global__ void rmsnorm_dw_finish_kernel(float* dw, const float* partial, int64_t dim, int64_t chunks) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= dim) return;
  float s = 0.0f;
  for (int64_t c = 0; c < chunks; ++c) s += partial[c * dim + i];
  dw[i] += s;
}

void check_shape(int64_t rows, int64_t dim, const char* fn) {
  MEDIX_CHECK(rows >= 0 && dim > 0, fn, ": bad shape rows=", rows, " dim=", dim);
}

}  // namespace

void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                     cudaStream_t stream) {
  check_shape(rows, dim, "rmsnorm_forward");
  if (rows == 0) return;
  rmsnorm_forward_kernel<<<blocks_for(rows, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream>>>(out, rstd, x, w, rows, dim,
                                                                                             eps);
  MEDIX_CUDA_LAUNCHED("rmsnorm_forward");
}

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                      int64_t rows, int64_t dim, cudaStream_t stream) {
  check_shape(rows, dim, "rmsnorm_backward");
  if (rows == 0) return;
  if (dx) {
    rmsnorm_dx_kernel<<<blocks_for(rows, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream>>>(dx, dout, x, w, rstd, rows,
                                                                                          dim);
    MEDIX_CUDA_LAUNCHED("rmsnorm_backward (dx)");
  }
  if (dw) {
    // Enough chunks to fill the GPU when dim is short, each at least 64 rows; fixed by the shape alone.
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(1024, rows / 64));
    Scratch<float> partial(chunks * dim, stream, "rmsnorm_backward (scratch)");
    const dim3 grid(blocks_for(dim, 128), static_cast<unsigned int>(chunks));
    rmsnorm_dw_partial_kernel<<<grid, 128, 0, stream>>>(partial.get(), dout, x, rstd, rows, dim, chunks);
    MEDIX_CUDA_LAUNCHED("rmsnorm_backward (dw partials)");
    rmsnorm_dw_finish_kernel<<<blocks_for(dim, 128), 128, 0, stream>>>(dw, partial.get(), dim, chunks);
    MEDIX_CUDA_LAUNCHED("rmsnorm_backward (dw)");
  }
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(RmsnormForward, cuda::rmsnorm_forward);
MEDIX_CUDA_OP(RmsnormBackward, cuda::rmsnorm_backward);

}  // namespace medix::cuda
