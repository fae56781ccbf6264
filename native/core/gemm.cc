// Single-precision GEMM: a portable blocked/packed kernel, and OpenBLAS when it was found at build time.
//
// Portable kernel, the classic Goto/BLIS scheme:
//   for each NC-wide column panel of C:
//     for each KC-deep slice of K (in order):
//       pack the KC x NC slice of op(B) into NR-wide micro-panels      (stays in L3, 4 MiB)
//       for each MC-tall row block:
//         pack the MC x KC block of op(A) into MR-tall micro-panels     (stays in L2, 480 KiB)
//         for every MR x NR tile: micro-kernel over the KC slice         (B micro-panel in L1)
// Packing turns all four transpose combinations into one memory layout, pads edges with zeros (so the
// micro-kernel always computes a full tile), and makes the inner loop read two contiguous streams.
//
// Determinism: every C element is computed by one thread as the same sequence of operations: per K
// slice (slices depend on K only), a fused multiply-add chain in k order in one vector lane, then
// C = alpha*acc + beta*C for the first slice and C += alpha*acc for the others. Edge tiles go through
// the same vector code via a temporary tile. So results do not depend on where a tile sits, on how C is
// split between threads, or on the thread count.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "error.h"
#include "threads.h"

#ifdef MEDIX_HAVE_OPENBLAS
#include <cblas.h>
// Declared here as well because a cblas.h from another BLAS lacks them; identical redeclarations are fine.
extern "C" {
char* openblas_get_config(void);
char* openblas_get_corename(void);
void openblas_set_num_threads(int num_threads);
}
#endif

namespace medix {
namespace {

// ---------------------------------------------------------------------------------------------------
// Sizes, tuned on a Zen 5 core (48 KiB L1d, 1 MiB L2, 32 MiB shared L3). Register tile MR x NR = 6 x 16:
// 12 vector accumulators + 2 B vectors + 1 broadcast A value fit the 16 vector registers of AVX2.
// KC: a KC x NR micro-panel of B (32 KiB) stays in L1 while MC/MR micro-kernels stream past it.
// MC: the MC x KC block of A (480 KiB) stays in L2. NC: the KC x NC panel of B (4 MiB) stays in L3.
// KC = 512 measured a few percent faster than 256 or 384 here (half as many passes over C).

typedef float v8f __attribute__((vector_size(32)));
// The same vector for unaligned loads/stores into user memory (C rows).
typedef float v8f_u __attribute__((vector_size(32), aligned(4), may_alias));

constexpr int64_t MR = 6;
constexpr int64_t NR = 16;
constexpr int64_t KC = 512;
constexpr int64_t MC = 240;  // multiple of MR
constexpr int64_t NC = 2048;  // multiple of NR

// A thread gets at least this many multiply-adds (~10-20 us of work), else waking it costs more than it saves.
constexpr int64_t kMinParallelMacs = int64_t(1) << 20;

struct Operand {
  const float* data;
  int64_t ld;
  bool trans;
};

// ---------------------------------------------------------------------------------------------------
// Packing.

// Rows [i0, i0+mc) x K-slice [p0, p0+kc) of op(A) into micro-panels of MR rows: panel p holds
// dst[p*kc*MR + k*MR + r] = op(A)[i0 + p*MR + r][p0 + k], rows past mc are zero.
void pack_a(const Operand& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  for (int64_t ir = 0; ir < mc; ir += MR, dst += kc * MR) {
    const int64_t m = std::min(MR, mc - ir);
    if (a.trans) {  // op(A)[i][k] = A[k][i]: each k contributes m contiguous values
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = a.data + (p0 + k) * a.ld + i0 + ir;
        float* d = dst + k * MR;
        for (int64_t r = 0; r < m; ++r) d[r] = src[r];
        for (int64_t r = m; r < MR; ++r) d[r] = 0.0f;
      }
    } else {  // op(A)[i][k] = A[i][k]: walk each row contiguously
      for (int64_t r = 0; r < m; ++r) {
        const float* src = a.data + (i0 + ir + r) * a.ld + p0;
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = src[k];
      }
      for (int64_t r = m; r < MR; ++r)
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = 0.0f;
    }
  }
}

// K-slice [p0, p0+kc) x columns [j0, j0+nc) of op(B) into micro-panels of NR columns: panel q holds
// dst[q*kc*NR + k*NR + c] = op(B)[p0 + k][j0 + q*NR + c], columns past nc are zero.
void pack_b(const Operand& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  for (int64_t jr = 0; jr < nc; jr += NR, dst += kc * NR) {
    const int64_t n = std::min(NR, nc - jr);
    if (b.trans) {  // op(B)[k][j] = B[j][k]: walk each stored row contiguously
      for (int64_t c = 0; c < n; ++c) {
        const float* src = b.data + (j0 + jr + c) * b.ld + p0;
        for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = src[k];
      }
      for (int64_t c = n; c < NR; ++c)
        for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = 0.0f;
    } else {  // op(B)[k][j] = B[k][j]: each k contributes n contiguous values
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = b.data + (p0 + k) * b.ld + j0 + jr;
        float* d = dst + k * NR;
        if (n == NR) {
          std::memcpy(d, src, NR * sizeof(float));
        } else {
          for (int64_t c = 0; c < n; ++c) d[c] = src[c];
          for (int64_t c = n; c < NR; ++c) d[c] = 0.0f;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// Micro-kernel and tile update.

struct Tile {
  v8f acc[MR][2];
};

// acc[r][h] = sum over k in order of a[k*MR + r] * b[k*NR + 8h .. 8h+7], one fused multiply-add chain per lane.
inline void micro_kernel(int64_t kc, const float* __restrict a, const float* __restrict b, Tile& t) {
  v8f c00 = {}, c01 = {}, c10 = {}, c11 = {}, c20 = {}, c21 = {};
  v8f c30 = {}, c31 = {}, c40 = {}, c41 = {}, c50 = {}, c51 = {};
  for (int64_t k = 0; k < kc; ++k, a += MR, b += NR) {
    const v8f b0 = *reinterpret_cast<const v8f*>(b);
    const v8f b1 = *reinterpret_cast<const v8f*>(b + 8);
    // vector * scalar broadcasts the scalar; GCC and Clang contract x += y * s into one FMA.
    c00 += b0 * a[0];
    c01 += b1 * a[0];
    c10 += b0 * a[1];
    c11 += b1 * a[1];
    c20 += b0 * a[2];
    c21 += b1 * a[2];
    c30 += b0 * a[3];
    c31 += b1 * a[3];
    c40 += b0 * a[4];
    c41 += b1 * a[4];
    c50 += b0 * a[5];
    c51 += b1 * a[5];
  }
  t.acc[0][0] = c00, t.acc[0][1] = c01, t.acc[1][0] = c10, t.acc[1][1] = c11;
  t.acc[2][0] = c20, t.acc[2][1] = c21, t.acc[3][0] = c30, t.acc[3][1] = c31;
  t.acc[4][0] = c40, t.acc[4][1] = c41, t.acc[5][0] = c50, t.acc[5][1] = c51;
}

// Folds a full MR x NR tile into C: C = alpha*acc + beta*C on the first K slice (C is not read when
// beta == 0, so garbage or NaN there is overwritten), C += alpha*acc on the later ones.
// Not inlined on purpose: the compiler may fuse alpha*acc + C into one FMA in one inlined copy and not in
// another; a single copy of the machine code gives full and edge tiles exactly the same rounding.
[[gnu::noinline]] void update_tile(const Tile& t, float* C, int64_t ldc, float alpha, float beta, bool first) {
  for (int64_t r = 0; r < MR; ++r) {
    v8f_u* row = reinterpret_cast<v8f_u*>(C + r * ldc);
    for (int h = 0; h < 2; ++h) {
      const v8f scaled = t.acc[r][h] * alpha;
      if (!first)
        row[h] = row[h] + scaled;
      else if (beta == 0.0f)
        row[h] = scaled;
      else
        row[h] = scaled + row[h] * beta;
    }
  }
}

// Same for an m x n corner (m <= MR, n <= NR): goes through a full temporary tile so that the arithmetic
// is exactly that of update_tile.
inline void update_edge_tile(const Tile& t, float* C, int64_t ldc, int64_t m, int64_t n, float alpha, float beta,
                             bool first) {
  alignas(32) float tmp[MR * NR];
  const bool reads_c = !first || beta != 0.0f;
  if (reads_c) {
    std::fill(tmp, tmp + MR * NR, 0.0f);
    for (int64_t r = 0; r < m; ++r) std::memcpy(tmp + r * NR, C + r * ldc, n * sizeof(float));
  }
  update_tile(t, tmp, NR, alpha, beta, first);
  for (int64_t r = 0; r < m; ++r) std::memcpy(C + r * ldc, tmp + r * NR, n * sizeof(float));
}

// ---------------------------------------------------------------------------------------------------
// Pack buffers: one pair per thread, grown on demand, so gemm_serial is safe inside parallel_for.

struct FreeAligned {
  void operator()(float* p) const { std::free(p); }
};

class PackBuffer {
 public:
  float* get(int64_t floats) {
    if (floats > capacity_) {
      const size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) / 64 * 64;
      float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) fail("gemm: cannot allocate a ", bytes, "-byte pack buffer");
      data_.reset(p);
      capacity_ = floats;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<float, FreeAligned> data_;
  int64_t capacity_ = 0;
};

thread_local PackBuffer packed_a, packed_b;

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// K is cut into equal-as-possible slices of at most KC. Depends on K alone, which keeps the summation
// order of every element fixed.
int64_t k_slice(int64_t K) {
  const int64_t slices = (K + KC - 1) / KC;
  return (K + slices - 1) / slices;
}

// C[i0:i1, j0:j1] on the calling thread (the whole K range). Not inlined, so gemm and gemm_serial run
// the same machine code and round identically.
[[gnu::noinline]] void portable_block(const Operand& a, const Operand& b, int64_t i0, int64_t i1, int64_t j0,
                                      int64_t j1, int64_t K, float alpha, float beta, float* C, int64_t ldc) {
  const int64_t kslice = k_slice(K);
  const int64_t nc_max = std::min(NC, round_up(j1 - j0, NR));
  const int64_t mc_max = std::min(MC, round_up(i1 - i0, MR));
  float* bbuf = packed_b.get(kslice * nc_max);
  float* abuf = packed_a.get(kslice * mc_max);
  Tile tile;
  for (int64_t jc = j0; jc < j1; jc += NC) {
    const int64_t nc = std::min(NC, j1 - jc);
    for (int64_t pc = 0; pc < K; pc += kslice) {
      const int64_t kc = std::min(kslice, K - pc);
      const bool first = pc == 0;
      pack_b(b, pc, kc, jc, nc, bbuf);
      for (int64_t ic = i0; ic < i1; ic += MC) {
        const int64_t mc = std::min(MC, i1 - ic);
        pack_a(a, ic, mc, pc, kc, abuf);
        for (int64_t jr = 0; jr < nc; jr += NR) {
          const int64_t n = std::min(NR, nc - jr);
          for (int64_t ir = 0; ir < mc; ir += MR) {
            const int64_t m = std::min(MR, mc - ir);
            micro_kernel(kc, abuf + ir * kc, bbuf + jr * kc, tile);
            float* c = C + (ic + ir) * ldc + jc + jr;
            if (m == MR && n == NR)
              update_tile(tile, c, ldc, alpha, beta, first);
            else
              update_edge_tile(tile, c, ldc, m, n, alpha, beta, first);
          }
        }
      }
    }
  }
}

// C = beta*C, the whole product when K == 0 or alpha == 0 (A and B are not read; C is not read if beta == 0).
void scale_c(int64_t M, int64_t N, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i) {
    float* row = C + i * ldc;
    if (beta == 0.0f)
      std::fill(row, row + N, 0.0f);
    else
      for (int64_t j = 0; j < N; ++j) row[j] *= beta;
  }
}

void check_args(const char* fn, bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                const float* B, int64_t ldb, const float* C, int64_t ldc) {
  MEDIX_CHECK(M >= 0 && N >= 0 && K >= 0, fn, ": M, N, K must be >= 0, got ", M, ", ", N, ", ", K);
  MEDIX_CHECK(lda >= std::max<int64_t>(1, ta ? M : K), fn, ": lda = ", lda, " is smaller than a row of A (",
              ta ? M : K, ")");
  MEDIX_CHECK(ldb >= std::max<int64_t>(1, tb ? K : N), fn, ": ldb = ", ldb, " is smaller than a row of B (",
              tb ? K : N, ")");
  MEDIX_CHECK(ldc >= std::max<int64_t>(1, N), fn, ": ldc = ", ldc, " is smaller than a row of C (", N, ")");
  MEDIX_CHECK(M == 0 || N == 0 || C, fn, ": C is null");
  MEDIX_CHECK(M == 0 || N == 0 || K == 0 || (A && B), fn, ": A or B is null");
}

// Handles the cases with no product to compute. Returns true when C is final.
bool trivial(int64_t M, int64_t N, int64_t K, float alpha, float beta, float* C, int64_t ldc) {
  if (M == 0 || N == 0) return true;
  if (K == 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return true;
  }
  return false;
}

// Splits C between the pool's threads along its longer side, in whole register tiles; each thread runs
// portable_block on its part (which by construction gives the same bits as a single thread would).
void portable_parallel(const Operand& a, const Operand& b, int64_t M, int64_t N, int64_t K, float alpha, float beta,
                       float* C, int64_t ldc) {
  const bool split_rows = M >= N;
  const int64_t unit = split_rows ? MR : NR;
  const int64_t extent = split_rows ? M : N;
  const int64_t units = (extent + unit - 1) / unit;
  const int64_t macs_per_unit = unit * (split_rows ? N : M) * K;
  const int64_t min_units = std::max<int64_t>(1, kMinParallelMacs / std::max<int64_t>(1, macs_per_unit));
  parallel_for(
      units,
      [&](int64_t u0, int64_t u1) {
        const int64_t lo = u0 * unit, hi = std::min(extent, u1 * unit);
        if (split_rows)
          portable_block(a, b, lo, hi, 0, N, K, alpha, beta, C, ldc);
        else
          portable_block(a, b, 0, M, lo, hi, K, alpha, beta, C, ldc);
      },
      min_units);
}

// ---------------------------------------------------------------------------------------------------
// Kernel selection.

GemmKernel parse_kernel_env() {
  const char* env = std::getenv("MEDIX_GEMM");
  if (!env || !*env) return gemm_openblas_available() ? GemmKernel::OpenBLAS : GemmKernel::Portable;
  const std::string v(env);
  if (v == "portable") return GemmKernel::Portable;
  if (v == "openblas") {
    MEDIX_CHECK(gemm_openblas_available(), "MEDIX_GEMM=openblas, but this build of medix has no OpenBLAS ",
                "(install libopenblas-dev and rebuild, or unset MEDIX_GEMM)");
    return GemmKernel::OpenBLAS;
  }
  fail("MEDIX_GEMM must be 'portable' or 'openblas', got '", v, "'");
}

// -1 until chosen: the environment decides at the first gemm_kernel() unless set_gemm_kernel came first.
// (A bad MEDIX_GEMM then throws, as a JS exception, instead of aborting the process while the addon loads.)
std::atomic<int> selected{-1};

#ifdef MEDIX_HAVE_OPENBLAS
// OpenBLAS runs single-threaded inside the medix pool rather than with threads of its own: two pools
// on the same cores each spin-wait after their calls and take turns at the cores (a prefill, which
// alternates GEMMs with medix ops, ran 1.4x slower that way). Each medix thread computes its own
// part of C with a single-threaded cblas_sgemm, which OpenBLAS supports from several threads at once.
void openblas_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                   const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  const int64_t biggest = std::max({M, N, K, lda, ldb, ldc});
  MEDIX_CHECK(biggest <= INT_MAX, "gemm: OpenBLAS takes 32-bit sizes, got a size or leading dimension of ", biggest);
  static std::once_flag single;
  std::call_once(single, [] { openblas_set_num_threads(1); });
  const bool split_rows = M >= N;
  const int64_t unit = 16;  // whole cache lines of C when splitting columns
  const int64_t extent = split_rows ? M : N;
  const int64_t units = (extent + unit - 1) / unit;
  const int64_t macs_per_unit = unit * (split_rows ? N : M) * K;
  parallel_for(
      units,
      [&](int64_t u0, int64_t u1) {
        const int64_t lo = u0 * unit, n = std::min(extent, u1 * unit) - lo;
        const float* a = A;
        const float* b = B;
        float* c = C;
        if (split_rows) {
          a += ta ? lo : lo * lda;
          c += lo * ldc;
        } else {
          b += tb ? lo * ldb : lo;
          c += lo;
        }
        cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                    int(split_rows ? n : M), int(split_rows ? N : n), int(K), alpha, a, int(lda), b, int(ldb), beta, c,
                    int(ldc));
      },
      std::max<int64_t>(1, kMinParallelMacs / std::max<int64_t>(1, macs_per_unit)));
}
#endif

}  // namespace

bool gemm_openblas_available() {
#ifdef MEDIX_HAVE_OPENBLAS
  return true;
#else
  return false;
#endif
}

GemmKernel gemm_kernel() {
  int k = selected.load();
  if (k < 0) {
    int unset = -1;
    selected.compare_exchange_strong(unset, static_cast<int>(parse_kernel_env()));
    k = selected.load();
  }
  return static_cast<GemmKernel>(k);
}

void set_gemm_kernel(GemmKernel k) {
  MEDIX_CHECK(k == GemmKernel::Portable || k == GemmKernel::OpenBLAS, "set_gemm_kernel: unknown kernel");
  MEDIX_CHECK(k != GemmKernel::OpenBLAS || gemm_openblas_available(),
              "set_gemm_kernel: OpenBLAS was not built in (install libopenblas-dev and rebuild)");
  selected.store(static_cast<int>(k));
}

const char* gemm_kernel_name(GemmKernel k) { return k == GemmKernel::OpenBLAS ? "openblas" : "portable"; }

const char* openblas_info() {
#ifdef MEDIX_HAVE_OPENBLAS
  static const std::string info = std::string(openblas_get_config()) + " core=" + openblas_get_corename();
  return info.c_str();
#else
  return "";
#endif
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args("gemm", ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  if (trivial(M, N, K, alpha, beta, C, ldc)) return;
#ifdef MEDIX_HAVE_OPENBLAS
  if (gemm_kernel() == GemmKernel::OpenBLAS) {
    openblas_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
#endif
  portable_parallel({A, lda, ta}, {B, ldb, tb}, M, N, K, alpha, beta, C, ldc);
}

void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  check_args("gemm_serial", ta, tb, M, N, K, A, lda, B, ldb, C, ldc);
  if (trivial(M, N, K, alpha, beta, C, ldc)) return;
  portable_block({A, lda, ta}, {B, ldb, tb}, 0, M, 0, N, K, alpha, beta, C, ldc);
}

}  // namespace medix
