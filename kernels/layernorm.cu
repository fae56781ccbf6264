// LayerNorm with weight and bias (layernorm.h: the Qwen3-VL vision tower's norms), forward and
// backward: out = (x - mean) * rstd * w + b, rstd = 1 / sqrt(var + eps), var the biased variance.
//
// One warp per row, as RMSNorm: vision rows are short (1,024-1,152), a warp needs no shared memory.
// The mean, then the variance around it (two passes over the row, as the CPU: no E[x^2] - E[x]^2
// cancellation), are fp32 per lane then a butterfly, a fixed order; the CPU sums in double, so the two
// agree to a few fp32 ulps of the row's values. dw and db are summed over rows in fixed chunks, then
// the chunks in order: no atomics, the same bits on every run.
#include <algorithm>

#include "backend_op.cuh"
#include "common.cuh"
#include "ops/layernorm.h"

namespace medix::cuda {
namespace {

constexpr int kRowsPerBlock = 8;  // warps per block

__global__ void layernorm_forward_kernel(float* out, float* mean, float* rstd, const float* x, const float* w,
                                         const float* b, int64_t rows, int64_t dim, float eps) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float* xr = x + r * dim;
  float s = 0.0f;
  for (int64_t i = lane; i < dim; i += 32) s += xr[i];
  const float m = warp_sum(s) / static_cast<float>(dim);
  float ss = 0.0f;
  for (int64_t i = lane; i < dim; i += 32) ss += (xr[i] - m) * (xr[i] - m);
  const float rs = 1.0f / sqrtf(warp_sum(ss) / static_cast<float>(dim) + eps);
  if (lane == 0) {
    mean[r] = m;
    rstd[r] = rs;
  }
  float* yr = out + r * dim;
  for (int64_t i = lane; i < dim; i += 32) yr[i] = (xr[i] - m) * rs * w[i] + b[i];
}

// dx += rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dout * w, xhat = (x - mean) * rstd.
__global__ void layernorm_dx_kernel(float* dx, const float* dout, const float* x, const float* w, const float* mean,
                                    const float* rstd, int64_t rows, int64_t dim) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (r >= rows) return;
  const float* dr = dout + r * dim;
  const float* xr = x + r * dim;
  const float m = mean[r], rs = rstd[r];
  float sg = 0.0f, sgx = 0.0f;
  for (int64_t i = lane; i < dim; i += 32) {
    const float g = dr[i] * w[i];
    sg += g;
    sgx += g * ((xr[i] - m) * rs);
  }
  const float mg = warp_sum(sg) / static_cast<float>(dim), mgx = warp_sum(sgx) / static_cast<float>(dim);
  float* dxr = dx + r * dim;
  for (int64_t i = lane; i < dim; i += 32) dxr[i] += rs * (dr[i] * w[i] - mg - (xr[i] - m) * rs * mgx);
}

// Chunk c (blockIdx.y) of the rows sums dout * xhat and dout per column into its partial rows.
__global__ void layernorm_params_partial_kernel(float* pw, float* pb, const float* dout, const float* x,
                                                const float* mean, const float* rstd, int64_t rows, int64_t dim,
                                                int64_t chunks) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t c = blockIdx.y;
  if (i >= dim) return;
  float sw = 0.0f, sb = 0.0f;
  for (int64_t r = c * rows / chunks; r < (c + 1) * rows / chunks; ++r) {
    const float d = dout[r * dim + i];
    sw += d * ((x[r * dim + i] - mean[r]) * rstd[r]);
    sb += d;
  }
  pw[c * dim + i] = sw;
  pb[c * dim + i] = sb;
}

__global__ void layernorm_params_finish_kernel(float* dw, float* db, const float* pw, const float* pb, int64_t dim,
                                               int64_t chunks) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= dim) return;
  float sw = 0.0f, sb = 0.0f;
  for (int64_t c = 0; c < chunks; ++c) {
    sw += pw[c * dim + i];
    sb += pb[c * dim + i];
  }
  if (dw) dw[i] += sw;
  if (db) db[i] += sb;
}

void check_shape(int64_t rows, int64_t dim, const char* fn) {
  MEDIX_CHECK(rows >= 0 && dim > 0, fn, ": bad shape rows=", rows, " dim=", dim);
}

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int64_t rows, int64_t dim, float eps, cudaStream_t stream) {
  check_shape(rows, dim, "layernorm_forward");
  if (rows == 0) return;
  layernorm_forward_kernel<<<blocks_for(rows, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream>>>(out, mean, rstd, x, w, b,
                                                                                               rows, dim, eps);
  MEDIX_CUDA_LAUNCHED("layernorm_forward");
}

void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int64_t dim, cudaStream_t stream) {
  check_shape(rows, dim, "layernorm_backward");
  if (rows == 0) return;
  if (dx) {
    layernorm_dx_kernel<<<blocks_for(rows, kRowsPerBlock), 32 * kRowsPerBlock, 0, stream>>>(dx, dout, x, w, mean, rstd,
                                                                                            rows, dim);
    MEDIX_CUDA_LAUNCHED("layernorm_backward (dx)");
  }
  if (dw || db) {
    // Chunks of at least 64 rows, at most 1024 of them: fixed by the shape alone (determinism).
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(1024, rows / 64));
    Scratch<float> pw(chunks * dim, stream, "layernorm_backward (scratch)");
    Scratch<float> pb(chunks * dim, stream, "layernorm_backward (scratch)");
    const dim3 grid(blocks_for(dim, 128), static_cast<unsigned int>(chunks));
    layernorm_params_partial_kernel<<<grid, 128, 0, stream>>>(pw.get(), pb.get(), dout, x, mean, rstd, rows, dim,
                                                              chunks);
    MEDIX_CUDA_LAUNCHED("layernorm_backward (dw, db partials)");
    layernorm_params_finish_kernel<<<blocks_for(dim, 128), 128, 0, stream>>>(dw, db, pw.get(), pb.get(), dim, chunks);
    MEDIX_CUDA_LAUNCHED("layernorm_backward (dw, db)");
  }
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(LayernormForward, cuda::layernorm_forward);
MEDIX_CUDA_OP(LayernormBackward, cuda::layernorm_backward);

}  // namespace medix::cuda
