// fp32 <-> bf16 conversions (kernels.h: to_bf16, from_bf16). to_bf16 has the CPU's definition
// (native/core/bf16.h, whose f32_to_bf16_scalar both sides call), not __float2bfloat16_rn: that one keeps
// denormals and makes a canonical NaN, so a bf16 compute copy made on the GPU would differ from the CPU's
// in those bits. Widening is exact (a shift) on both.
#include "backend_op.cuh"
#include "common.cuh"
#include "core/bf16.h"

namespace medix::cuda {
namespace {

__global__ void to_bf16_kernel(uint16_t* dst, const float* src, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = f32_to_bf16_scalar(src[i]);
}

__global__ void from_bf16_kernel(float* dst, const uint16_t* src, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = bf16_to_f32_scalar(src[i]);
}

}  // namespace

void to_bf16(bf16* dst, const float* src, int64_t n, cudaStream_t stream) {
  MEDIX_CHECK(n >= 0, "to_bf16: n must be >= 0, got ", n);
  if (n == 0) return;
  to_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(reinterpret_cast<uint16_t*>(dst), src, n);
  MEDIX_CUDA_LAUNCHED("to_bf16");
}

void from_bf16(float* dst, const bf16* src, int64_t n, cudaStream_t stream) {
  MEDIX_CHECK(n >= 0, "from_bf16: n must be >= 0, got ", n);
  if (n == 0) return;
  from_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dst, reinterpret_cast<const uint16_t*>(src), n);
  MEDIX_CUDA_LAUNCHED("from_bf16");
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(ToBf16, cuda::to_bf16);
MEDIX_CUDA_OP(FromBf16, cuda::from_bf16);

}  // namespace medix::cuda
