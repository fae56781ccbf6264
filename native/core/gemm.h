// Single-precision matrix multiply, row-major, the one GEMM every CPU op calls.
//
//   C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C
//   op(A) = A ([M,K], leading dimension lda) or A^T (A stored [K,M]); likewise B.
//
// Two kernels sit behind it: OpenBLAS (when it was found at build time) and a portable blocked,
// packed, multi-threaded kernel that is always compiled in. The kernel is chosen at run time: OpenBLAS
// by default when built in, the environment variable MEDIX_GEMM=portable|openblas (read once, at first
// use) overrides that, set_gemm_kernel overrides both. OpenBLAS is the default for every shape. On a
// 2-core AMD EPYC (Zen 4, AVX-512, FMA peak 236 GFLOP/s; OpenBLAS 0.3.21 picked its Cooperlake kernel),
// `npm run bench -- --only gemm` at 2048^3 on 2 threads: portable 207-211 GFLOP/s on its avx512
// register kernel, 200-204 on avx2, OpenBLAS 197-201; at the train step's MLP shape (2048x1536x512)
// portable 210-215, OpenBLAS 196-203. On 2 threads OpenBLAS still ran 256^3 and few-row products faster.
// No timed calibration at start-up: a choice that depends on timing could change results' bits from
// one run to the next, which resumed training must not see.
//
// The portable kernel runs on a register kernel chosen at run time: "avx512" when the CPU has AVX-512
// (and the build is GCC on x86-64), else the build's own ("avx2" on x86-64, "generic" elsewhere). All
// give the same bits (gemm_micro.h); set_gemm_micro_kernel picks one (tests, benchmarks).
//
// Both kernels: K == 0 or alpha == 0 gives C = beta*C without reading A or B; beta == 0 never reads C
// (NaN there is overwritten). The portable kernel's results are bit-identical run to run and whatever
// the thread count or register kernel; OpenBLAS's may depend on the thread count (each thread computes
// a slice of C).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace medix {

enum class GemmKernel { Portable = 0, OpenBLAS = 1 };

bool gemm_openblas_available();
GemmKernel gemm_kernel();
void set_gemm_kernel(GemmKernel k);  // throws if OpenBLAS is asked for but was not built in
const char* gemm_kernel_name(GemmKernel k);
// The portable kernel's register kernels this CPU can run (the build's own first), the one in use, and
// a way to choose (throws, naming the available ones, for any other name).
std::vector<const char*> gemm_micro_kernels();
const char* gemm_micro_kernel();
void set_gemm_micro_kernel(const std::string& name);
// What OpenBLAS reports about itself (core it chose, build config), or "" when not built in.
const char* openblas_info();

// Multi-threaded, with the selected kernel. Must not be called from inside parallel_for.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// Single-threaded portable kernel: safe to call from inside parallel_for (attention uses it per head).
// Same bits as gemm() with the portable kernel.
void gemm_serial(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

}  // namespace medix
