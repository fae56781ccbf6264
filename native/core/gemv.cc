// The few-row product y = x W^T (see gemv.h). Register tiles of MR rows of x by NR rows of W hold
// MR*NR 8-lane accumulators; per step of 8 along K a tile loads NR vectors of W and MR of x and
// does MR*NR fused multiply-adds. Tile shapes keep accumulators + W vectors + one x vector within
// the 16 vector registers of AVX2: 4x3 for full groups of four rows, 3x3, 2x5 and 1x6 for the rest
// (one row streams six W rows at once, enough for the hardware prefetchers to keep memory busy).
// W is f32 or bf16 (gemv_nt_bf16): a bf16 vector widens to f32 exactly as it is loaded, so both run
// the same multiply-adds in the same order, and bf16 reads half the bytes.
#include "gemv.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "bf16.h"
#include "error.h"
#include "simd.h"
#include "threads.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace medix {
namespace {

using simd::load;
using simd::v8f;

// Loads a vector into a register and keeps it there: without this GCC folds the load into every
// multiply-add that uses the value (one memory operand each), which makes the tiles load-bound.
inline v8f load_reg(const float* p) {
  v8f v = load(p);
#if defined(__x86_64__)
  asm("" : "+x"(v));
#endif
  return v;
}

// Eight bf16 values widened to f32 (a shift into the upper half), kept in a register likewise.
inline v8f load_reg(const uint16_t* p) {
#if defined(__AVX2__)
  const __m256i w = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))), 16);
  v8f v = reinterpret_cast<v8f>(_mm256_castsi256_ps(w));
  asm("" : "+x"(v));
  return v;
#else
  v8f v;
  for (int k = 0; k < 8; ++k) v[k] = bf16_to_f32_scalar(p[k]);
  return v;
#endif
}

inline float scalar(float w) { return w; }
inline float scalar(uint16_t w) { return bf16_to_f32_scalar(w); }

// acc + a*b in one rounding where the hardware has FMA (spelled out, so no instantiation is left to
// the compiler's contraction choices).
inline v8f fma8(v8f a, v8f b, v8f acc) {
#if defined(__FMA__)
  return reinterpret_cast<v8f>(
      _mm256_fmadd_ps(reinterpret_cast<__m256>(a), reinterpret_cast<__m256>(b), reinterpret_cast<__m256>(acc)));
#else
  return acc + a * b;
#endif
}

// A tile reads NR rows of W side by side, so each row is a separate short stream (2 KiB at K = 512)
// and the hardware prefetchers, which need a few misses to lock on to a stream, keep restarting:
// one core then pulls about half the memory bandwidth it gets on a plain sequential read. So every
// tile asks for the next tile's lines itself, in address order, one line per W row per 16 floats
// of k (32 bf16 values): the whole next tile by the time this one ends. A prefetch never faults, so
// the lines past the end of W that the last tile names are harmless. The lines go to L2, not L1:
// with L1 prefetches 8-row decode took about the sum of the memory and the compute time (head
// product [8 x 512] x [151,936 x 512]^T, 2 threads, Zen 4: 19.3 ms into L1, 12.6 ms into L2; 1 row
// 11.9 and 10.5 ms). Our reading, not measured with counters: an L1 prefetch holds one of the core's
// few L1 miss buffers until its line arrives, and the tile's own loads wait behind a tile's worth.
inline void prefetch_line(uintptr_t address) {
#if defined(__x86_64__) || defined(__i386__)
  _mm_prefetch(reinterpret_cast<const char*>(address), _MM_HINT_T1);
#else
  __builtin_prefetch(reinterpret_cast<const void*>(address), 0, 2);
#endif
}

// The fixed end of every dot product: lanes summed pairwise in one tree, then the tail terms in order.
template <typename TW>
inline float finish(v8f acc, const float* x, const TW* w, int64_t k8, int64_t K) {
  float s = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
  for (int64_t k = k8; k < K; ++k) s = std::fma(x[k], scalar(w[k]), s);
  return s;
}

template <typename TW>
struct Args {
  int64_t M, N, K;
  const float* x;
  int64_t ldx;
  const TW* W;
  int64_t ldw;
  float* y;
  int64_t ldy;
};

// y[m0 .. m0+MR) x [n0 .. n0+NR).
template <int MR, int NR, typename TW>
inline void tile(const Args<TW>& a, int64_t m0, int64_t n0) {
  constexpr int64_t kPerLine = 64 / sizeof(TW);  // W values per cache line
  const int64_t k8 = a.K / 8 * 8;
  v8f acc[MR][NR] = {};
  const float* xr[MR];
  const TW* wr[NR];
  for (int m = 0; m < MR; ++m) xr[m] = a.x + (m0 + m) * a.ldx;
  for (int n = 0; n < NR; ++n) wr[n] = a.W + (n0 + n) * a.ldw;
  // The next tile's W rows, prefetched in address order while this tile runs (see prefetch_line).
  const uintptr_t next = reinterpret_cast<uintptr_t>(a.W + (n0 + NR) * a.ldw);
  for (int64_t k = 0; k < k8; k += 8) {
    if (k % kPerLine == 0)
      for (int n = 0; n < NR; ++n) prefetch_line(next + static_cast<uintptr_t>((k / kPerLine) * NR + n) * 64);
    v8f w[NR];
    for (int n = 0; n < NR; ++n) w[n] = load_reg(wr[n] + k);
    for (int m = 0; m < MR; ++m) {
      const v8f xv = load_reg(xr[m] + k);
      for (int n = 0; n < NR; ++n) acc[m][n] = fma8(xv, w[n], acc[m][n]);
    }
  }
  for (int m = 0; m < MR; ++m)
    for (int n = 0; n < NR; ++n) a.y[(m0 + m) * a.ldy + n0 + n] = finish(acc[m][n], xr[m], wr[n], k8, a.K);
}

// Rows [m0, m0+MR) of x against W rows [n0, n1): full tiles of NR, then one W row at a time.
template <int MR, int NR, typename TW>
void strip(const Args<TW>& a, int64_t m0, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + NR <= n1; n += NR) tile<MR, NR>(a, m0, n);
  for (; n < n1; ++n) tile<MR, 1>(a, m0, n);
}

// Groups of four x rows [m0, m1) against W rows [n0, n1): each 4x3 tile of W rows is taken by every
// group in turn while it is in L1, so W streams from memory in one pass and its prefetches (issued
// by every tile) run under all groups' multiply-adds. Strip by strip instead, the groups after the
// first read the block from cache while memory idles.
template <typename TW>
void groups_of_four(const Args<TW>& a, int64_t m0, int64_t m1, int64_t n0, int64_t n1) {
  int64_t n = n0;
  for (; n + 3 <= n1; n += 3)
    for (int64_t m = m0; m < m1; m += 4) tile<4, 3>(a, m, n);
  for (; n < n1; ++n)
    for (int64_t m = m0; m < m1; m += 4) tile<4, 1>(a, m, n);
}

// W rows per block: every group of x rows passes over a block while it is in cache (30 = a multiple
// of every NR used, 60 KiB at K = 512).
constexpr int64_t kBlock = 30;
// Rows of x interleaved over one W tile (groups_of_four): 16 rows (64 KiB at K = 1024) stay in L2.
constexpr int64_t kInterleavedRows = 16;
// A thread gets at least this many multiply-adds, else waking it costs more than it saves.
constexpr int64_t kMinParallelMacs = int64_t(1) << 17;

template <typename TW>
void range(const Args<TW>& a, int64_t n0, int64_t n1) {
  for (int64_t b = n0; b < n1; b += kBlock) {
    const int64_t e = std::min(n1, b + kBlock), fours = a.M / 4 * 4;
    for (int64_t m = 0; m < fours; m += kInterleavedRows)
      groups_of_four(a, m, std::min(fours, m + kInterleavedRows), b, e);
    const int64_t m = fours;
    switch (a.M - m) {
      case 3:
        strip<3, 3>(a, m, b, e);
        break;
      case 2:
        strip<2, 5>(a, m, b, e);
        break;
      case 1:
        strip<1, 6>(a, m, b, e);
        break;
      default:
        break;
    }
  }
}

template <typename TW>
void gemv_any(const char* fn, int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const TW* W, int64_t ldw,
              float* y, int64_t ldy) {
  MEDIX_CHECK(M >= 0 && N >= 0 && K >= 0, fn, ": M, N, K must be >= 0, got ", M, ", ", N, ", ", K);
  MEDIX_CHECK(ldx >= K && ldw >= K && ldy >= N, fn, ": a leading dimension is smaller than its row");
  if (M == 0 || N == 0) return;
  const Args<TW> a{M, N, K, x, ldx, W, ldw, y, ldy};
  const int64_t min_rows = std::max<int64_t>(kBlock, kMinParallelMacs / std::max<int64_t>(1, M * K));
  parallel_for(
      N, [&](int64_t n0, int64_t n1) { range(a, n0, n1); }, min_rows);
}

}  // namespace

void gemv_nt(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const float* W, int64_t ldw, float* y,
             int64_t ldy) {
  gemv_any("gemv_nt", M, N, K, x, ldx, W, ldw, y, ldy);
}

void gemv_nt_bf16(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const uint16_t* W, int64_t ldw,
                  float* y, int64_t ldy) {
  gemv_any("gemv_nt_bf16", M, N, K, x, ldx, W, ldw, y, ldy);
}

}  // namespace medix
