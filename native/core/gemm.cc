// Single-precision GEMM: the portable blocked/packed kernel (gemm_block.h, with the register kernel
// picked at run time: gemm_base.cc, gemm_avx512.cc), and OpenBLAS when it was found at build time.
// This file chooses between them and splits C between the pool's threads.
//
// Determinism: every C element is computed by one thread as the same sequence of operations (see
// gemm_micro.h), so the portable kernel's results depend neither on the thread split, nor on the
// thread count, nor on which register kernel ran.
#include "gemm.h"

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "error.h"
#include "gemm_block.h"
#include "gemm_micro.h"
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

// A thread gets at least this many multiply-adds (~10-20 us of work), else waking it costs more than it saves.
constexpr int64_t kMinParallelMacs = int64_t(1) << 20;

// The portable kernel's register kernel: the widest this CPU has unless set_gemm_micro_kernel chose.
std::atomic<const MicroKernel*> micro{nullptr};

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
  MEDIX_CHECK(lda >= std::max<int64_t>(1, ta ? M : K), fn, ": lda = ", lda, " is smaller than a row of A (", ta ? M : K,
              ")");
  MEDIX_CHECK(ldb >= std::max<int64_t>(1, tb ? K : N), fn, ": ldb = ", ldb, " is smaller than a row of B (", tb ? K : N,
              ")");
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

// Parts of work given to threads: at least kMinParallelMacs multiply-adds each.
int64_t min_units(int64_t macs_per_unit) {
  return std::max<int64_t>(1, kMinParallelMacs / std::max<int64_t>(1, macs_per_unit));
}

// Splits C between the pool's threads in whole register tiles. Row split (M >= N, or rows enough for
// every thread to get many): for each column panel and K slice the threads first pack op(B) together
// into one shared buffer, then each computes its rows against it, so op(B) is packed once, not once
// per thread. Column split (few rows, e.g. decoding's): each thread runs the whole blocked loop on
// its columns. Every element is computed the same way either way, so the split changes no bits.
void portable_parallel(const GemmOperand& a, const GemmOperand& b, int64_t M, int64_t N, int64_t K, float alpha,
                       float beta, float* C, int64_t ldc) {
  const MicroKernel& k = selected_micro_kernel();
  const int64_t row_units = (M + k.mr - 1) / k.mr;
  const bool split_rows = M >= N || row_units >= 16 * num_threads();
  if (!split_rows || row_units <= min_units(k.mr * N * K)) {  // columns, or one thread's work
    const int64_t unit = split_rows ? k.mr : k.nr;
    const int64_t extent = split_rows ? M : N;
    parallel_for((extent + unit - 1) / unit,
                 [&](int64_t u0, int64_t u1) {
                   const int64_t lo = u0 * unit, hi = std::min(extent, u1 * unit);
                   if (split_rows)
                     k.block(k, a, b, lo, hi, 0, N, K, alpha, beta, C, ldc);
                   else
                     k.block(k, a, b, 0, M, lo, hi, K, alpha, beta, C, ldc);
                 },
                 min_units(unit * (split_rows ? N : M) * K));
    return;
  }
  static thread_local PackBuffer shared_b;  // the calling thread's; the pool's threads only fill and read it
  const int64_t kslice = gemm_k_slice(K);
  float* bbuf = shared_b.get(kslice * std::min(k.nc, round_up(N, k.nr)));
  for (int64_t jc = 0; jc < N; jc += k.nc) {
    const int64_t nc = std::min(k.nc, N - jc);
    for (int64_t pc = 0; pc < K; pc += kslice) {
      const int64_t kc = std::min(kslice, K - pc);
      const int64_t panels = (nc + k.nr - 1) / k.nr;
      parallel_for(
          panels,
          [&](int64_t q0, int64_t q1) {
            k.pack_b(b, pc, kc, jc + q0 * k.nr, std::min(nc, q1 * k.nr) - q0 * k.nr, bbuf + q0 * k.nr * kc);
          },
          min_units(k.nr * kc * 16));  // copying a float costs about as much as 16 multiply-adds
      parallel_for(
          row_units,
          [&](int64_t u0, int64_t u1) {
            k.rows(k, a, bbuf, u0 * k.mr, std::min(M, u1 * k.mr), jc, nc, pc, kc, alpha, beta, C, ldc);
          },
          min_units(k.mr * nc * kc));
    }
  }
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

const MicroKernel& selected_micro_kernel() {
  const MicroKernel* k = micro.load();
  if (k) return *k;
  const MicroKernel* widest = avx512_micro_kernel();
  if (!widest) widest = &base_micro_kernel();
  const MicroKernel* unset = nullptr;
  micro.compare_exchange_strong(unset, widest);
  return *micro.load();
}

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

std::vector<const char*> gemm_micro_kernels() {
  std::vector<const char*> out{base_micro_kernel().name};
  if (const MicroKernel* k = avx512_micro_kernel()) out.push_back(k->name);
  return out;
}

const char* gemm_micro_kernel() { return selected_micro_kernel().name; }

void set_gemm_micro_kernel(const std::string& name) {
  const MicroKernel* wide = avx512_micro_kernel();
  if (name == base_micro_kernel().name)
    micro.store(&base_micro_kernel());
  else if (wide && name == wide->name)
    micro.store(wide);
  else {
    std::string names;
    for (const char* n : gemm_micro_kernels()) names += (names.empty() ? "" : ", ") + std::string(n);
    fail("setGemmMicroKernel: '", name, "' is not a register kernel this CPU can run (available: ", names, ")");
  }
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
  const MicroKernel& k = selected_micro_kernel();
  k.block(k, {A, lda, ta}, {B, ldb, tb}, 0, M, 0, N, K, alpha, beta, C, ldc);
}

}  // namespace medix
