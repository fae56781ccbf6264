// The portable GEMM's register kernel for the build's own target: a 6 x 16 tile of 8-lane vectors
// (AVX2+FMA on x86-64: 12 accumulators + 2 B vectors + 1 broadcast A value fill its 16 registers).
#include "gemm_block.h"

#if defined(__FMA__)
#include <immintrin.h>
#endif

namespace medix {
namespace {

typedef float v8f __attribute__((vector_size(32)));

// a[0] in every lane. a - 0.0f is a for every a (-0.0f too), so the subtraction folds away and this is
// one vbroadcastss from memory, an op for a load port beside the FMAs. `v8f{} + a[0]` cannot fold
// (-0.0f + 0.0f is +0.0f): it cost an FP add and a register shuffle per broadcast, which held the
// kernel near 0.6 of the FMA peak.
inline v8f broadcast8(const float* a) { return a[0] - v8f{}; }

// c + a * b as one fused multiply-add (one rounding), the same as every other kernel's step.
inline v8f fma8(v8f a, v8f b, v8f c) {
#if defined(__FMA__)
  return (v8f)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return c + a * b;  // contracted to an FMA where the target has one
#endif
}

struct Micro6x16 {
  static constexpr int64_t MR = 6, NR = 16;

  // acc[r][j] = sum over k in order of a[k*MR + r] * b[k*NR + j], one FMA chain per lane, folded into out.
  static void run(int64_t kc, const float* __restrict a, const float* __restrict b, const TileOut& out) {
    gemm_prefetch_tile<MR, NR>(out);
    v8f c[MR][2] = {};
    for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
      const v8f b0 = *reinterpret_cast<const v8f*>(b);
      const v8f b1 = *reinterpret_cast<const v8f*>(b + 8);
#pragma GCC unroll 6
      for (int64_t r = 0; r < MR; ++r) {
        const v8f ar = broadcast8(a + r);
        c[r][0] = fma8(ar, b0, c[r][0]);
        c[r][1] = fma8(ar, b1, c[r][1]);
      }
    }
    gemm_fold_tile<fma8>(c, out);
  }
};

}  // namespace

const MicroKernel& base_micro_kernel() {
#if defined(__x86_64__)
  static const MicroKernel k = make_micro_kernel<Micro6x16>("avx2");
#else
  static const MicroKernel k = make_micro_kernel<Micro6x16>("generic");
#endif
  return k;
}

}  // namespace medix
