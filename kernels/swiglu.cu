// SwiGLU gate of the MLP (swiglu.h), forward and backward: out = silu(gate) * up. One thread per
// element; the float operations are those of the CPU code, on fp32 or bf16 storage.
#include "backend_op.cuh"
#include "common.cuh"
#include "ops/swiglu.h"

namespace medix::cuda {
namespace {

// 1 / (1 + e^-g) without overflow, as the CPU writes it: for g < 0, e^g / (1 + e^g).
__device__ inline float sigmoid(float g) {
  if (g >= 0.0f) return 1.0f / (1.0f + expf(-g));
  const float e = expf(g);
  return e / (1.0f + e);
}

// T is the storage type (float or bf16); the math is fp32.
template <typename T>
__global__ void swiglu_forward_kernel(T* out, const T* gate, const T* up, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = to_f32(gate[i]);
  out[i] = from_f32<T>(g * sigmoid(g) * to_f32(up[i]));
}

// d silu(g)/dg = s (1 + g (1 - s)), s = sigmoid(g).
template <typename T>
__global__ void swiglu_backward_kernel(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = to_f32(gate[i]), s = sigmoid(g), d = to_f32(dout[i]);
  dgate[i] = from_f32<T>(to_f32(dgate[i]) + d * to_f32(up[i]) * s * (1.0f + g * (1.0f - s)));
  dup[i] = from_f32<T>(to_f32(dup[i]) + d * g * s);
}

template <typename T>
void launch_forward(T* out, const T* gate, const T* up, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  swiglu_forward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(out, gate, up, n);
  MEDIX_CUDA_LAUNCHED("swiglu_forward");
}

template <typename T>
void launch_backward(T* dgate, T* dup, const T* dout, const T* gate, const T* up, int64_t n, cudaStream_t stream) {
  if (n <= 0) return;
  swiglu_backward_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(dgate, dup, dout, gate, up, n);
  MEDIX_CUDA_LAUNCHED("swiglu_backward");
}

}  // namespace

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n, cudaStream_t stream) {
  launch_forward(out, gate, up, n, stream);
}
void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, int64_t n, cudaStream_t stream) {
  launch_forward(out, gate, up, n, stream);
}
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n,
                     cudaStream_t stream) {
  launch_backward(dgate, dup, dout, gate, up, n, stream);
}
void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate, const bf16* up, int64_t n,
                     cudaStream_t stream) {
  launch_backward(dgate, dup, dout, gate, up, n, stream);
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(SwigluForward, cuda::swiglu_forward);
MEDIX_CUDA_OP(SwigluBackward, cuda::swiglu_backward);

}  // namespace medix::cuda
