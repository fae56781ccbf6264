// bf16 <-> f32 conversions (bf16.h): a scalar path, an AVX2 path (integer rounding on 8 lanes, the
// build's own target on x86-64) and an AVX512-BF16 path (VCVTNE2PS2BF16, compiled for that target by
// attribute and run only when cpu_features reports it). All give the bits of bf16.h's definition.
// bf16 -> f32 is a shift into the upper half on every path.
#include "bf16.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "cpu_features.h"
#include "error.h"
#include "threads.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace medix {
namespace {

void to_bf16_scalar(uint16_t* dst, const float* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = f32_to_bf16_scalar(src[i]);
}
void to_f32_scalar(float* dst, const uint16_t* src, int64_t n) {
  for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32_scalar(src[i]);
}

#if defined(__x86_64__) && defined(__AVX2__)
constexpr bool kHaveAvx2 = true;

// Eight values by the definition: the rounded upper half, replaced by the quiet NaN or the signed
// zero where those cases apply.
inline __m256i round8(__m256i b) {
  const __m256i hi = _mm256_srli_epi32(b, 16);
  const __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
  const __m256i rounded = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(b, _mm256_set1_epi32(0x7fff)), lsb), 16);
  const __m256i abs = _mm256_and_si256(b, _mm256_set1_epi32(0x7fffffff));
  const __m256i is_nan = _mm256_cmpgt_epi32(abs, _mm256_set1_epi32(0x7f800000));
  const __m256i is_tiny =
      _mm256_cmpeq_epi32(_mm256_and_si256(b, _mm256_set1_epi32(0x7f800000)), _mm256_setzero_si256());
  const __m256i quiet = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
  const __m256i zero = _mm256_and_si256(hi, _mm256_set1_epi32(0x8000));
  return _mm256_blendv_epi8(_mm256_blendv_epi8(rounded, quiet, is_nan), zero, is_tiny);
}

void to_bf16_avx2(uint16_t* dst, const float* src, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m256i lo = round8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i)));
    const __m256i hi = round8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(src + i + 8)));
    // packus works within 128-bit lanes: [lo0-3, hi0-3, lo4-7, hi4-7]; the permute puts them in order.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(lo, hi), 0xD8);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + i), packed);
  }
  to_bf16_scalar(dst + i, src + i, n - i);
}

void to_f32_avx2(float* dst, const uint16_t* src, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i)));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  to_f32_scalar(dst + i, src + i, n - i);
}
#else
constexpr bool kHaveAvx2 = false;
void to_bf16_avx2(uint16_t* dst, const float* src, int64_t n) { to_bf16_scalar(dst, src, n); }
void to_f32_avx2(float* dst, const uint16_t* src, int64_t n) { to_f32_scalar(dst, src, n); }
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
constexpr bool kHaveAvx512Bf16 = true;

[[gnu::target("avx512f,avx512bw,avx512vl,avx512bf16")]] void to_bf16_avx512(uint16_t* dst, const float* src,
                                                                            int64_t n) {
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    // VCVTNE2PS2BF16: the second operand fills the lower 16 results.
    const __m512bh r = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + i + 16), _mm512_loadu_ps(src + i));
    _mm512_storeu_si512(dst + i, reinterpret_cast<const __m512i&>(r));
  }
  to_bf16_scalar(dst + i, src + i, n - i);
}

#else
constexpr bool kHaveAvx512Bf16 = false;
void to_bf16_avx512(uint16_t* dst, const float* src, int64_t n) { to_bf16_scalar(dst, src, n); }
#endif

void check_path(Bf16Path p) {
  const std::vector<Bf16Path> have = bf16_paths();
  MEDIX_CHECK(std::find(have.begin(), have.end(), p) != have.end(), "bf16 conversion: path '", bf16_path_name(p),
              "' is not available on this CPU or build");
}

}  // namespace

const char* compute_dtype_name(ComputeDType d) { return d == ComputeDType::bf16 ? "bf16" : "f32"; }

ComputeDType parse_compute_dtype(const char* name, const char* what) {
  const std::string s = name;
  if (s == "f32") return ComputeDType::f32;
  if (s == "bf16") return ComputeDType::bf16;
  fail(what, ": dtype must be 'f32' or 'bf16', got '", s, "'");
}

std::vector<Bf16Path> bf16_paths() {
  std::vector<Bf16Path> out = {Bf16Path::Scalar};
  if (kHaveAvx2) out.push_back(Bf16Path::Avx2);
  if (kHaveAvx512Bf16 && cpu_features().avx512_bf16) out.push_back(Bf16Path::Avx512Bf16);
  return out;
}

Bf16Path bf16_best_path() {
  static const Bf16Path best = bf16_paths().back();
  return best;
}

const char* bf16_path_name(Bf16Path p) {
  switch (p) {
    case Bf16Path::Avx2:
      return "avx2";
    case Bf16Path::Avx512Bf16:
      return "avx512bf16";
    default:
      return "scalar";
  }
}

void f32_to_bf16(uint16_t* dst, const float* src, int64_t n, Bf16Path p) {
  check_path(p);
  if (p == Bf16Path::Avx512Bf16) return to_bf16_avx512(dst, src, n);
  if (p == Bf16Path::Avx2) return to_bf16_avx2(dst, src, n);
  to_bf16_scalar(dst, src, n);
}

void bf16_to_f32(float* dst, const uint16_t* src, int64_t n, Bf16Path p) {
  check_path(p);
  // Widening is a shift, bound by memory: the AVX2 code serves the AVX512-BF16 path too.
  if (p != Bf16Path::Scalar) return to_f32_avx2(dst, src, n);
  to_f32_scalar(dst, src, n);
}

void f32_to_bf16(uint16_t* dst, const float* src, int64_t n) { f32_to_bf16(dst, src, n, bf16_best_path()); }
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n) { bf16_to_f32(dst, src, n, bf16_best_path()); }

void f32_to_bf16_parallel(uint16_t* dst, const float* src, int64_t n) {
  parallel_for(
      n, [&](int64_t i0, int64_t i1) { f32_to_bf16(dst + i0, src + i0, i1 - i0); }, int64_t(1) << 16);
}

void bf16_to_f32_parallel(float* dst, const uint16_t* src, int64_t n) {
  parallel_for(
      n, [&](int64_t i0, int64_t i1) { bf16_to_f32(dst + i0, src + i0, i1 - i0); }, int64_t(1) << 16);
}

// The CPU backend's ops (backend_op.h).
MEDIX_CPU_OP(ToBf16, f32_to_bf16_parallel);
MEDIX_CPU_OP(FromBf16, bf16_to_f32_parallel);

}  // namespace medix
