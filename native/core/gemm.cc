// TEMPORARY naive GEMM so other ops can link while the blocked kernel is written.
#include "gemm.h"
#include "error.h"

namespace medix {
namespace {
GemmKernel current = GemmKernel::Portable;
}
bool gemm_openblas_available() { return false; }
GemmKernel gemm_kernel() { return current; }
void set_gemm_kernel(GemmKernel k) {
  MEDIX_CHECK(k == GemmKernel::Portable, "OpenBLAS was not built in");
  current = k;
}
const char* gemm_kernel_name(GemmKernel k) { return k == GemmKernel::OpenBLAS ? "openblas" : "portable"; }
const char* openblas_info() { return ""; }

void gemm_serial(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float s = 0;
      for (int64_t k = 0; k < K; ++k) s += (ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
      C[i * ldc + j] = alpha * s + (beta == 0.0f ? 0.0f : beta * C[i * ldc + j]);
    }
}
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda, const float* B,
          int64_t ldb, float beta, float* C, int64_t ldc) {
  gemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
}  // namespace medix
