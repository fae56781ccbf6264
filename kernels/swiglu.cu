// SwiGLU gate of the MLP (swiglu.h), forward and backward: out = silu(gate) * up. One thread per
// element; the float operations are those of the CPU code.
#include "common.cuh"

namespace medix::cuda {
namespace {

// 1 / (1 + e^-g) without overflow, as the CPU writes it: for g < 0, e^g / (1 + e^g).
__device__ inline float sigmoid(float g) {
  if (g >= 0.0f) return 1.0f / (1.0f + expf(-g));
  const float e = expf(g);
  return e / (1.0f + e);
}

__global__ void swiglu_forward_kernel(float* out, const float* gate, const float* up, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
}

// d silu(g)/dg = s (1 + g (1 - s)), s = sigmoid(g).
__global__ void swiglu_backward_kernel(float* dgate, float* dup, const float* dout, const float* gate,
                                       const float* up, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = gate[i], s = sigmoid(g);
  dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
  dup[i] += dout[i] * g * s;
}

}  // namespace

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  swiglu_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out, gate, up, n);
  MEDIX_CUDA_LAUNCHED("swiglu_forward");
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n,
                     cudaStream_t stream) {
  if (n <= 0) return;
  swiglu_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dgate, dup, dout, gate, up, n);
  MEDIX_CUDA_LAUNCHED("swiglu_backward");
}

}  // namespace medix::cuda
