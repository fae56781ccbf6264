// fp32 -> bf16 conversion (kernels.h: to_bf16) with the CPU's definition (native/core/bf16.h, whose
// f32_to_bf16_scalar both sides call), not __float2bfloat16_rn: that one keeps denormals and makes
// a canonical NaN, so a bf16 compute copy made on the GPU would differ from the CPU's in those bits.
#include "backend_op.cuh"
#include "common.cuh"
#include "core/bf16.h"

namespace medix::cuda {
namespace {

__global__ void to_bf16_kernel(uint16_t* dst, const float* src, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = f32_to_bf16_scalar(src[i]);
}

}  // namespace

void to_bf16(bf16* dst, const float* src, int64_t n, cudaStream_t stream) {
  MEDIX_CHECK(n >= 0, "to_bf16: n must be >= 0, got ", n);
  if (n == 0) return;
  to_bf16_kernel<<<blocks_for(n), kThreads, 0, stream>>>(reinterpret_cast<uint16_t*>(dst), src, n);
  MEDIX_CUDA_LAUNCHED("to_bf16");
}

// The CUDA backend's op (core/backend_op.h).
MEDIX_CUDA_OP(ToBf16, cuda::to_bf16);

}  // namespace medix::cuda
