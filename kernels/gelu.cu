// GELU (gelu.h: the vision tower's MLP uses the tanh form, the patch mergers the erf form), forward
// and backward, one thread per element with the CPU's formulas:
//   tanh: 0.5 x (1 + tanh(c (x + a x^3))), c = sqrt(2/pi), a = 0.044715;  erf: 0.5 x (1 + erf(x / sqrt(2))).
#include "backend_op.cuh"
#include "common.cuh"

namespace medix::cuda {
namespace {

constexpr float kC = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kA = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

__device__ inline float gelu_value(float x, bool tanh_form) {
  if (tanh_form) return 0.5f * x * (1.0f + tanhf(kC * (x + kA * x * x * x)));
  return 0.5f * x * (1.0f + erff(x * kInvSqrt2));
}

__device__ inline float gelu_derivative(float x, bool tanh_form) {
  if (tanh_form) {
    const float th = tanhf(kC * (x + kA * x * x * x));
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * kC * (1.0f + 3.0f * kA * x * x);
  }
  return 0.5f * (1.0f + erff(x * kInvSqrt2)) + x * kInvSqrt2Pi * expf(-0.5f * x * x);
}

__global__ void gelu_forward_kernel(float* out, const float* x, int64_t n, bool tanh_form) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) out[i] = gelu_value(x[i], tanh_form);
}

__global__ void gelu_backward_kernel(float* dx, const float* dout, const float* x, int64_t n, bool tanh_form) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dx[i] += dout[i] * gelu_derivative(x[i], tanh_form);
}

}  // namespace

void gelu_forward(float* out, const float* x, int64_t n, cpu::GeluKind kind, cudaStream_t stream) {
  if (n <= 0) return;
  gelu_forward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(out, x, n, kind == cpu::GeluKind::kTanh);
  MEDIX_CUDA_LAUNCHED("gelu_forward");
}

void gelu_backward(float* dx, const float* dout, const float* x, int64_t n, cpu::GeluKind kind, cudaStream_t stream) {
  if (n <= 0) return;
  gelu_backward_kernel<<<blocks_for(n), kThreads, 0, stream>>>(dx, dout, x, n, kind == cpu::GeluKind::kTanh);
  MEDIX_CUDA_LAUNCHED("gelu_backward");
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(GeluForward, cuda::gelu_forward);
MEDIX_CUDA_OP(GeluBackward, cuda::gelu_backward);

}  // namespace medix::cuda
