// Token embedding (embedding.h), forward and backward.
#include "backend_op.cuh"
#include "common.cuh"
#include "ops/embedding.h"

namespace medix::cuda {
namespace {

__global__ void embedding_forward_kernel(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * dim) return;
  const int64_t token = i / dim, c = i % dim;
  out[i] = table[static_cast<int64_t>(ids[token]) * dim + c];
}

// Repeated ids make several tokens add into one table row. As on the CPU, every table column has
// one owner thread that adds the tokens in token order: no atomics, the same bits on every run.
// (Parallel over columns only; a sort by id would expose more parallelism when it matters.)
__global__ void embedding_backward_kernel(float* dtable, const float* dout, const int32_t* ids, int64_t n,
                                          int64_t dim) {
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (c >= dim) return;
  for (int64_t i = 0; i < n; ++i) dtable[static_cast<int64_t>(ids[i]) * dim + c] += dout[i * dim + c];
}

}  // namespace

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim,
                       cudaStream_t stream) {
  if (n <= 0 || dim <= 0) return;
  embedding_forward_kernel<<<blocks_for(n * dim), kThreads, 0, stream>>>(out, ids, table, n, dim);
  MEDIX_CUDA_LAUNCHED("embedding_forward");
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t n, int64_t dim,
                        cudaStream_t stream) {
  if (n <= 0 || dim <= 0) return;
  embedding_backward_kernel<<<blocks_for(dim, 64), 64, 0, stream>>>(dtable, dout, ids, n, dim);
  MEDIX_CUDA_LAUNCHED("embedding_backward");
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(EmbeddingForward, cuda::embedding_forward);
MEDIX_CUDA_OP(EmbeddingBackward, cuda::embedding_backward);

}  // namespace medix::cuda
