// Residual add (residual.h): out = a + b; its backward is add_inplace (dst += src) into both inputs.
#include "backend_op.cuh"
#include "common.cuh"
#include "ops/residual.h"

namespace medix::cuda {
namespace {

// T is the storage type (float or bf16); the sum is taken in fp32.
template <typename T>
__global__ void add_kernel(T* out, const T* a, const T* b, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = from_f32<T>(to_f32(a[i]) + to_f32(b[i]));
}

template <typename T>
__global__ void add_inplace_kernel(T* dst, const T* src, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = from_f32<T>(to_f32(dst[i]) + to_f32(src[i]));
}

template <typename T>
void launch_add(T* out, const T* a, const T* b, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(out, a, b, n);
  MEDIX_CUDA_LAUNCHED("add_forward");
}

template <typename T>
void launch_add_inplace(T* dst, const T* src, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  add_inplace_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(dst, src, n);
  MEDIX_CUDA_LAUNCHED("add_inplace");
}

}  // namespace

void add_forward(float* out, const float* a, const float* b, int64_t n, cudaStream_t stream) {
  launch_add(out, a, b, n, stream);
}
void add_forward(bf16* out, const bf16* a, const bf16* b, int64_t n, cudaStream_t stream) {
  launch_add(out, a, b, n, stream);
}
void add_inplace(float* dst, const float* src, int64_t n, cudaStream_t stream) {
  launch_add_inplace(dst, src, n, stream);
}
void add_inplace(bf16* dst, const bf16* src, int64_t n, cudaStream_t stream) {
  launch_add_inplace(dst, src, n, stream);
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(AddForward, cuda::add_forward);
MEDIX_CUDA_OP(AddInplace, cuda::add_inplace);

}  // namespace medix::cuda
