// Residual add (residual.h): out = a + b; its backward is add_inplace (dst += src) into both inputs.
#include "common.cuh"

namespace medix::cuda {
namespace {

__global__ void add_kernel(float* out, const float* a, const float* b, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

__global__ void add_inplace_kernel(float* dst, const float* src, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] += src[i];
}

}  // namespace

void add_forward(float* out, const float* a, const float* b, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out, a, b, n);
  MEDIX_CUDA_LAUNCHED("add_forward");
}

void add_inplace(float* dst, const float* src, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_inplace_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dst, src, n);
  MEDIX_CUDA_LAUNCHED("add_inplace");
}

}  // namespace medix::cuda
