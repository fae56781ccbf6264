// 2D rotary embedding of the Qwen3-VL vision attention (vision_rope.h), forward and backward. Pair j
// of a head (elements j and j + D/2) turns by angle = coords[t, j < D/4 ? 0 : 1] * f[j % (D/4)]:
// out_j = a cos - b sin, out_{j+D/2} = b cos + a sin. Backward applies the transposed rotation (sin
// negated) and accumulates into dx.
//
// How it matches the CPU: f is the CPU's own (cpu::vision_rope_inverse_frequencies, on the host), the
// angle is the same float32 product, and cos and sin are taken in double of that angle and rounded to
// float32, where the CPU calls glibc's cosf/sinf (within an ulp, not always correctly rounded; CUDA's
// cosf/sinf are further off, up to 2 ulp). The rotation is the
// float operations GCC emits for the CPU's `a * c - b * s` and `b * c + a * s` (C++ contracts by default
// and the build's -march=x86-64-v3 has FMA): fma(a, c, -(b s)) and fma(b, c, a s), the second product
// rounded first; the same __fmaf_rn/__fmul_rn here, where nvcc would otherwise pick its own contraction.
// So an output is the CPU's bits wherever cosf/sinf round as the double ones do, else an ulp of cos or
// sin times |x| away (kUlps in the conformance case). A host emulation of this arithmetic gave the CPU's
// bits everywhere when fed glibc's cosf/sinf (the operations are the same), and on 99.3-100% of the
// elements of the conformance shapes with the rounded double cos/sin.
//
// One thread per (token, pair j), looping over the heads: cos and sin once per token and pair, and
// consecutive threads read and write consecutive elements of each head. No reduction.
#include <vector>

#include "backend_op.cuh"
#include "common.cuh"
#include "ops/vision_rope.h"

namespace medix::cuda {
namespace {

template <bool accumulate>
__global__ void vision_rope_kernel(float* dst, const float* src, const int32_t* coords, const float* inv_freq,
                                   int64_t T, int64_t heads, int64_t D, float sign) {
  const int64_t half = D / 2, q = D / 4;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * half) return;
  const int64_t t = i / half, j = i % half;
  const float angle = __fmul_rn(static_cast<float>(coords[2 * t + (j < q ? 0 : 1)]), inv_freq[j % q]);
  double sin_d, cos_d;
  sincos(static_cast<double>(angle), &sin_d, &cos_d);
  const float c = static_cast<float>(cos_d), s = sign * static_cast<float>(sin_d);
  for (int64_t h = 0; h < heads; ++h) {
    const float* in = src + (t * heads + h) * D;
    float* out = dst + (t * heads + h) * D;
    const float a = in[j], b = in[j + half];  // both read before writing: dst may be src
    const float ra = __fmaf_rn(a, c, -__fmul_rn(b, s)), rb = __fmaf_rn(b, c, __fmul_rn(a, s));
    if (accumulate) {
      out[j] = __fadd_rn(out[j], ra);
      out[j + half] = __fadd_rn(out[j + half], rb);
    } else {
      out[j] = ra;
      out[j + half] = rb;
    }
  }
}

template <bool accumulate>
void rotate(float* dst, const float* src, const int32_t* coords, int64_t T, int64_t heads, int64_t D, float theta,
            float sign, cudaStream_t stream, const char* fn) {
  MEDIX_CHECK(T >= 0 && heads >= 0 && D >= 4 && D % 4 == 0, fn, ": bad shape T=", T, " heads=", heads, " D=", D,
              " (D must be a positive multiple of 4)");
  const int64_t n = T * (D / 2);
  if (n == 0 || heads == 0) return;
  const std::vector<float> f = cpu::vision_rope_inverse_frequencies(D, theta);
  Scratch<float> d_f(static_cast<int64_t>(f.size()), stream, fn);
  // From pageable memory: the copy has read f when it returns.
  check(cudaMemcpyAsync(d_f.get(), f.data(), sizeof(float) * f.size(), cudaMemcpyHostToDevice, stream), fn);
  vision_rope_kernel<accumulate>
      <<<blocks_for(n), kThreads, 0, stream>>>(dst, src, coords, d_f.get(), T, heads, D, sign);
  MEDIX_CUDA_LAUNCHED(fn);
}

}  // namespace

void vision_rope_forward(float* out, const float* x, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                         float theta, cudaStream_t stream) {
  rotate<false>(out, x, coords, T, heads, D, theta, 1.0f, stream, "vision_rope_forward");
}

void vision_rope_backward(float* dx, const float* dout, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                          float theta, cudaStream_t stream) {
  rotate<true>(dx, dout, coords, T, heads, D, theta, -1.0f, stream, "vision_rope_backward");
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(VisionRopeForward, cuda::vision_rope_forward);
MEDIX_CUDA_OP(VisionRopeBackward, cuda::vision_rope_backward);

}  // namespace medix::cuda
