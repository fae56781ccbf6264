// AdamW (adamw.h) and the gradient utilities around it: global sum of squares (for the norm and
// the non-finite check) and scaling. The clip scale can be folded into the step itself.
#include <cmath>
#include <vector>

#include "backend_op.cuh"
#include "common.cuh"

namespace medix::cuda {
namespace {

// The element-wise update, the CPU's float operations in the CPU's order:
//   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;  p = p shrink - step_size m / (sqrt(v)/sqrt(bc2) + eps).
__global__ void adamw_kernel(float* p, const float* g, float* m, float* v, int64_t n, float b1, float b2, float eps,
                             float shrink, float step_size, float bc2_sqrt, float grad_scale, bool scaled) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float gi = scaled ? g[i] * grad_scale : g[i];
  const float mi = b1 * m[i] + (1.0f - b1) * gi;
  const float vi = b2 * v[i] + (1.0f - b2) * (gi * gi);
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] * shrink - step_size * (mi / (sqrtf(vi) / bc2_sqrt + eps));
}

// Chunks of the sum of squares: a fixed count that depends only on n, so the partials and their
// ordered sum are the same on every run and every GPU.
constexpr int64_t kChunkElems = 1 << 16;
constexpr int kSumThreads = 256;

// Block c sums the squares of its chunk in double: strided per thread, then a fixed tree.
__global__ void sum_squares_kernel(double* partial, const float* g, int64_t n) {
  __shared__ double shared[32];
  const int64_t begin = static_cast<int64_t>(blockIdx.x) * kChunkElems;
  const int64_t end = begin + kChunkElems < n ? begin + kChunkElems : n;
  double s = 0.0;
  for (int64_t i = begin + threadIdx.x; i < end; i += blockDim.x) s += static_cast<double>(g[i]) * g[i];
  s = block_sum(s, shared);
  if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void scale_kernel(float* g, float s, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) g[i] *= s;
}

}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t step,
                bool decay, float grad_scale, cudaStream_t stream) {
  MEDIX_CHECK(step >= 1, "adamw_step: step must be >= 1, got ", step);
  if (n <= 0) return;
  // Host-side constants computed exactly as the CPU computes them (torch's bias-correction form).
  const float shrink = decay ? static_cast<float>(1.0 - static_cast<double>(cfg.lr) * cfg.weight_decay) : 1.0f;
  const double bc1 = 1.0 - std::pow(static_cast<double>(cfg.beta1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(cfg.beta2), static_cast<double>(step));
  const float step_size = static_cast<float>(cfg.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  adamw_kernel<<<blocks_for(n), kThreads, 0, stream>>>(p, g, m, v, n, cfg.beta1, cfg.beta2, cfg.eps, shrink, step_size,
                                                       bc2_sqrt, grad_scale, grad_scale != 1.0f);
  MEDIX_CUDA_LAUNCHED("adamw_step");
}

double sum_squares(const float* g, int64_t n, cudaStream_t stream) {
  if (n <= 0) return 0.0;
  const int64_t chunks = (n + kChunkElems - 1) / kChunkElems;
  Scratch<double> partial(chunks, stream, "sum_squares (scratch)");
  sum_squares_kernel<<<static_cast<unsigned int>(chunks), kSumThreads, 0, stream>>>(partial.get(), g, n);
  MEDIX_CUDA_LAUNCHED("sum_squares");
  std::vector<double> host(static_cast<size_t>(chunks));
  check(cudaMemcpyAsync(host.data(), partial.get(), sizeof(double) * host.size(), cudaMemcpyDeviceToHost, stream),
        "sum_squares (copy)");
  check(cudaStreamSynchronize(stream), "sum_squares (sync)");
  double s = 0.0;
  for (double x : host) s += x;  // chunk order
  return s;
}

void scale_inplace(float* g, float s, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  scale_kernel<<<blocks_for(n), kThreads, 0, stream>>>(g, s, n);
  MEDIX_CUDA_LAUNCHED("scale_inplace");
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(AdamwStep, cuda::adamw_step);
MEDIX_CUDA_OP(SumSquares, cuda::sum_squares);
MEDIX_CUDA_OP(ScaleInplace, cuda::scale_inplace);

}  // namespace medix::cuda
