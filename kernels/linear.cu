// Linear layer (linear.h), forward and backward, on a tiled fp32 GEMM of our own.
//
// The GEMM is the textbook shared-memory tiling (in the spirit of llm.c's first matmul kernels):
// a block computes a 64 x 64 tile of C, staging 64 x 16 slices of op(A) and op(B) in shared memory;
// each of its 256 threads accumulates a 4 x 4 sub-tile in registers, over k in order. The
// transposes are template parameters that only change how the slices are read. Correct and
// deterministic, not fast: cuBLASLt takes the large products (kernels/linear_blas.cu). B's element
// type is a template parameter too: a bf16 weight widens to fp32 as it is staged, so the bf16 entries
// compute exactly the fp32 products of the widened weights (the CPU's *_bf16 math).
#include <algorithm>

#include "common.cuh"

namespace medix::cuda {
namespace {

constexpr int kTileM = 64, kTileN = 64, kTileK = 16, kGemmThreads = 256;

template <bool kTransA, bool kTransB, typename BT>
__global__ void __launch_bounds__(kGemmThreads)
    gemm_kernel(int64_t M, int64_t N, int64_t K, float alpha, const float* __restrict__ A, int64_t lda,
                const BT* __restrict__ B, int64_t ldb, float beta, float* __restrict__ C, int64_t ldc) {
  __shared__ float As[kTileK][kTileM + 4];  // As[k][m] = op(A)[m0 + m, k0 + k]
  __shared__ float Bs[kTileK][kTileN + 4];  // Bs[k][n] = op(B)[k0 + k, n0 + n]
  const int64_t m0 = static_cast<int64_t>(blockIdx.y) * kTileM, n0 = static_cast<int64_t>(blockIdx.x) * kTileN;
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  float acc[4][4] = {};
  for (int64_t k0 = 0; k0 < K; k0 += kTileK) {
    // 64 x 16 elements per slice, 4 per thread; each read runs along the stored row of its matrix.
    for (int l = 0; l < 4; ++l) {
      const int idx = threadIdx.x + l * kGemmThreads;
      int m, k;
      if (kTransA)
        k = idx / kTileM, m = idx % kTileM;  // A stored [K, M]
      else
        m = idx / kTileK, k = idx % kTileK;  // A stored [M, K]
      const int64_t gm = m0 + m, gk = k0 + k;
      float a = 0.0f;
      if (gm < M && gk < K) a = kTransA ? A[gk * lda + gm] : A[gm * lda + gk];
      As[k][m] = a;
      int n;
      if (kTransB)
        n = idx / kTileK, k = idx % kTileK;  // B stored [N, K]
      else
        k = idx / kTileN, n = idx % kTileN;  // B stored [K, N]
      const int64_t gn = n0 + n, gk2 = k0 + k;
      float b = 0.0f;
      if (gn < N && gk2 < K) b = to_f32(kTransB ? B[gn * ldb + gk2] : B[gk2 * ldb + gn]);
      Bs[k][n] = b;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTileK; ++k) {
      float a[4], b[4];
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = As[k][ty * 4 + i];
#pragma unroll
      for (int j = 0; j < 4; ++j) b[j] = Bs[k][tx * 4 + j];
#pragma unroll
      for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) acc[i][j] += a[i] * b[j];
    }
    __syncthreads();
  }
  for (int i = 0; i < 4; ++i) {
    const int64_t m = m0 + ty * 4 + i;
    if (m >= M) continue;
    for (int j = 0; j < 4; ++j) {
      const int64_t n = n0 + tx * 4 + j;
      if (n >= N) continue;
      float* c = C + m * ldc + n;
      *c = beta == 0.0f ? alpha * acc[i][j] : alpha * acc[i][j] + beta * *c;  // beta 0 never reads C
    }
  }
}

// y[t, :] = b (the bias rows the GEMM then accumulates onto).
__global__ void bias_rows_kernel(float* y, const float* b, int64_t T, int64_t out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < T * out) y[i] = b[i % out];
}

// db[o] += sum_t dy[t, o] in double (the CPU's precision; its order differs: a row reduction), in two passes so that
// enough threads read dy: a column per thread would leave a 1024-wide layer 4 blocks, reading 64k rows one after
// another (tens of ms). Chunk c (blockIdx.y) of the tokens sums each column in order into its partial row; then each
// column sums the chunks in order. No atomics: the same bits every run.
__global__ void bias_grad_partial_kernel(double* partial, const float* dy, int64_t T, int64_t out, int64_t chunks) {
  const int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x, c = blockIdx.y;
  if (o >= out) return;
  double s = 0.0;
  for (int64_t t = c * T / chunks; t < (c + 1) * T / chunks; ++t) s += dy[t * out + o];
  partial[c * out + o] = s;
}
__global__ void bias_grad_finish_kernel(float* db, const double* partial, int64_t out, int64_t chunks) {
  const int64_t o = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (o >= out) return;
  double s = 0.0;
  for (int64_t c = 0; c < chunks; ++c) s += partial[c * out + o];
  db[o] += static_cast<float>(s);
}

// The tiled GEMM for either B element type (gemm's contract).
template <typename BT>
void tiled_gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                const BT* B, int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t stream) {
  MEDIX_CHECK(M >= 0 && N >= 0 && K >= 0, "cuda gemm: M, N, K must be >= 0, got ", M, ", ", N, ", ", K);
  MEDIX_CHECK((M + kTileM - 1) / kTileM <= 65535, "cuda gemm: M = ", M, " is above this kernel's grid limit");
  if (M == 0 || N == 0) return;
  const dim3 grid(blocks_for(N, kTileN), blocks_for(M, kTileM));
  if (!trans_a && !trans_b)
    gemm_kernel<false, false, BT><<<grid, kGemmThreads, 0, stream>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (!trans_a && trans_b)
    gemm_kernel<false, true, BT><<<grid, kGemmThreads, 0, stream>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else if (trans_a && !trans_b)
    gemm_kernel<true, false, BT><<<grid, kGemmThreads, 0, stream>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_kernel<true, true, BT><<<grid, kGemmThreads, 0, stream>>>(M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  MEDIX_CUDA_LAUNCHED("cuda gemm");
}

// linear.h on the tiled GEMM, W in fp32 or bf16 (dW is fp32 in both: dy^T x does not read W).
template <typename WT>
void tiled_linear_forward(float* y, const float* x, const WT* W, const float* b, int64_t T, int64_t in, int64_t out,
                          cudaStream_t stream) {
  if (T == 0 || out == 0) return;
  if (b) linear_bias_rows(y, b, T, out, stream);
  tiled_gemm(false, true, T, out, in, 1.0f, x, in, W, in, b ? 1.0f : 0.0f, y, out, stream);
}

template <typename WT>
void tiled_linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const WT* W, int64_t T,
                           int64_t in, int64_t out, cudaStream_t stream) {
  if (T == 0) return;
  if (dx) tiled_gemm(false, false, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in, stream);  // dx += dy W
  tiled_gemm(true, false, out, in, T, 1.0f, dy, out, x, in, 1.0f, dW, in, stream);           // dW += dy^T x
  if (db) linear_bias_grad(db, dy, T, out, stream);
}

}  // namespace

void linear_bias_rows(float* y, const float* b, int64_t T, int64_t out, cudaStream_t stream) {
  if (T == 0 || out == 0) return;
  bias_rows_kernel<<<blocks_for(T * out), kThreads, 0, stream>>>(y, b, T, out);
  MEDIX_CUDA_LAUNCHED("linear_forward (bias)");
}
void linear_bias_grad(float* db, const float* dy, int64_t T, int64_t out, cudaStream_t stream) {
  if (T == 0 || out == 0) return;
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(1024, T / 64));
  Scratch<double> partial(chunks * out, stream, "linear_backward (bias partial sums)");
  const dim3 grid(blocks_for(out, 128), static_cast<unsigned int>(chunks));
  bias_grad_partial_kernel<<<grid, 128, 0, stream>>>(partial.get(), dy, T, out, chunks);
  MEDIX_CUDA_LAUNCHED("linear_backward (bias partial sums)");
  bias_grad_finish_kernel<<<blocks_for(out, 128), 128, 0, stream>>>(db, partial.get(), out, chunks);
  MEDIX_CUDA_LAUNCHED("linear_backward (bias)");
}

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t stream) {
  tiled_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, stream);
}

void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out,
                    cudaStream_t stream) {
  tiled_linear_forward(y, x, W, b, T, in, out, stream);
}
void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                     int64_t in, int64_t out, cudaStream_t stream) {
  tiled_linear_backward(dx, dW, db, dy, x, W, T, in, out, stream);
}
void linear_forward(float* y, const float* x, const bf16* W, const float* b, int64_t T, int64_t in, int64_t out,
                    cudaStream_t stream) {
  tiled_linear_forward(y, x, W, b, T, in, out, stream);
}
void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const bf16* W, int64_t T,
                     int64_t in, int64_t out, cudaStream_t stream) {
  tiled_linear_backward(dx, dW, db, dy, x, W, T, in, out, stream);
}

}  // namespace medix::cuda
