// Rotary position embedding (rope.h), standard and multi-section, forward and backward. Element j
// of a head pairs with j + head_dim/2 and turns by pos[component(j), t] * inv_freq[j]; backward
// applies the transposed rotation (the angle negated) and accumulates.
//
// inv_freq is computed on the host exactly as the CPU does (float32, step by step) and passed with
// the frequency-to-component map in the kernel's parameters; cos/sin are taken in double of the
// float32 angle and rounded, as on the CPU, so the two agree to the last bit or so.
#include <cmath>

#include "backend_op.cuh"
#include "common.cuh"

namespace medix::cuda {
namespace {

constexpr int64_t kMaxHalf = 256;  // head_dim up to 512

struct RopeTable {
  float inv_freq[kMaxHalf];
  uint8_t component[kMaxHalf];
};

RopeTable make_table(const RopeSpec& spec, const char* fn) {
  MEDIX_CHECK(spec.head_dim > 0 && spec.head_dim % 2 == 0 && spec.head_dim / 2 <= kMaxHalf, fn,
              ": head_dim must be even, > 0 and <= ", 2 * kMaxHalf, ", got ", spec.head_dim);
  MEDIX_CHECK(spec.n_components >= 1, fn, ": n_components must be >= 1, got ", spec.n_components);
  RopeTable table{};
  for (int64_t j = 0; j < spec.head_dim / 2; ++j) {
    const float exponent = static_cast<float>(2 * j) / static_cast<float>(spec.head_dim);
    table.inv_freq[j] = 1.0f / std::pow(spec.theta, exponent);
    table.component[j] = spec.freq_component ? spec.freq_component[j] : 0;
    MEDIX_CHECK(table.component[j] < spec.n_components, fn, ": freq_component[", j, "] = ", int(table.component[j]),
                " is not below n_components = ", spec.n_components);
  }
  return table;
}

// One thread per (token, head, pair j). sign = +1 forward (write), -1 backward (accumulate).
template <bool accumulate>
__global__ void rope_kernel(float* dst, const float* src, const int32_t* pos, int64_t T, int64_t n_heads,
                            int64_t head_dim, float sign, const RopeTable table) {
  const int64_t half = head_dim / 2;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * n_heads * half) return;
  const int64_t j = i % half, th = i / half, t = th / n_heads;
  const float angle = static_cast<float>(pos[table.component[j] * T + t]) * table.inv_freq[j];
  const float c = static_cast<float>(cos(static_cast<double>(angle)));
  const float s = sign * static_cast<float>(sin(static_cast<double>(angle)));
  const float* in = src + th * head_dim;
  float* out = dst + th * head_dim;
  const float a = in[j], b = in[j + half];  // both read before writing: dst may be src
  const float ra = a * c - b * s, rb = b * c + a * s;
  if (accumulate) {
    out[j] += ra;
    out[j + half] += rb;
  } else {
    out[j] = ra;
    out[j + half] = rb;
  }
}

}  // namespace

void rope_forward(float* out, const float* x, const int32_t* pos, int64_t T, int64_t n_heads, const RopeSpec& spec,
                  cudaStream_t stream) {
  const RopeTable table = make_table(spec, "rope_forward");
  const int64_t n = T * n_heads * (spec.head_dim / 2);
  if (n <= 0) return;
  rope_kernel<false><<<blocks_for(n), kThreads, 0, stream>>>(out, x, pos, T, n_heads, spec.head_dim, 1.0f, table);
  MEDIX_CUDA_LAUNCHED("rope_forward");
}

void rope_backward(float* dx, const float* dout, const int32_t* pos, int64_t T, int64_t n_heads, const RopeSpec& spec,
                   cudaStream_t stream) {
  const RopeTable table = make_table(spec, "rope_backward");
  const int64_t n = T * n_heads * (spec.head_dim / 2);
  if (n <= 0) return;
  rope_kernel<true><<<blocks_for(n), kThreads, 0, stream>>>(dx, dout, pos, T, n_heads, spec.head_dim, -1.0f, table);
  MEDIX_CUDA_LAUNCHED("rope_backward");
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(RopeForward, cuda::rope_forward);
MEDIX_CUDA_OP(RopeBackward, cuda::rope_backward);

}  // namespace medix::cuda
