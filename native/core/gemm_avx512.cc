// The portable GEMM's AVX-512 register kernel: a 14 x 32 tile (28 accumulators + 2 B vectors + 1
// broadcast A value of the 32 zmm registers; 2 loads of B per 28 FMAs). Compiled for AVX-512 by a
// target pragma on this file's own functions only, and used only when the CPU reports AVX-512
// (cpu_features), so the addon still runs on AVX2-only machines. GCC only (Clang spells the pragma
// differently); elsewhere avx512_micro_kernel() is nullptr.
#include "gemm_micro.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// Everything the pragma must not reach comes first: these headers' inline functions keep the base target.
#include <immintrin.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "cpu_features.h"
#include "error.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")
#include "gemm_block.h"

namespace medix {
namespace {

typedef float v16f __attribute__((vector_size(64)));

inline v16f fma16(v16f a, v16f b, v16f c) { return (v16f)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c); }

struct Micro14x32 {
  static constexpr int64_t MR = 14, NR = 32;

  // acc[r][j] = sum over k in order of a[k*MR + r] * b[k*NR + j], one FMA chain per lane, folded into out.
  static void run(int64_t kc, const float* __restrict a, const float* __restrict b, const TileOut& out) {
    gemm_prefetch_tile<MR, NR>(out);
    v16f c[MR][2];
#pragma GCC unroll 14
    for (int64_t r = 0; r < MR; ++r) c[r][0] = c[r][1] = v16f{};
    for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
      const __m512 b0 = _mm512_load_ps(b);
      const __m512 b1 = _mm512_load_ps(b + 16);
#pragma GCC unroll 14
      for (int64_t r = 0; r < MR; ++r) {
        const __m512 ar = _mm512_set1_ps(a[r]);
        c[r][0] = (v16f)_mm512_fmadd_ps(ar, b0, (__m512)c[r][0]);
        c[r][1] = (v16f)_mm512_fmadd_ps(ar, b1, (__m512)c[r][1]);
      }
    }
    gemm_fold_tile<fma16>(c, out);
  }
};

MicroKernel avx512_kernel() { return make_micro_kernel<Micro14x32>("avx512"); }

}  // namespace
}  // namespace medix
#pragma GCC pop_options

namespace medix {
const MicroKernel* avx512_micro_kernel() {
  static const MicroKernel k = avx512_kernel();
  return cpu_features().avx512 ? &k : nullptr;
}
}  // namespace medix

#else
namespace medix {
const MicroKernel* avx512_micro_kernel() { return nullptr; }
}  // namespace medix
#endif
