// Linear layer through cuBLASLt (kernels.h: linear_forward_blas / linear_backward_blas):
// y = x W^T (+ b), dx += dy W, dW += dy^T x (db += sum_t dy), in fp32 or with bf16 operands (dW stays fp32;
// no bias), and the mixed form of a bf16 compute copy: fp32 activations rounded to bf16 in scratch, bf16
// W, fp32 results. A bias is added as the tiled kernel adds it: y starts as the bias rows and the product
// is accumulated onto them (beta = 1).
#include <atomic>
#include <cstdlib>
#include <initializer_list>
#include <string>

#include "backend_op.cuh"
#include "common.cuh"
#include "ops/linear.h"
#include "cuda/libraries.h"

namespace medix::cuda {
namespace {

// y = x W^T (+ b): ab is x's and W's element type, c is y's (fp32 when b is given). Every form below.
void forward(GemmType ab, GemmType c, void* y, const void* x, const void* W, const float* b, int64_t T, int64_t in,
             int64_t out, cudaStream_t stream) {
  if (b) linear_bias_rows(static_cast<float*>(y), b, T, out, stream);
  blas_gemm(ab, c, false, true, T, out, in, 1.0f, x, in, W, in, b ? 1.0f : 0.0f, y, out, stream);
}

// dx += dy W (dx of type c), dW += dy^T x (fp32); ab is dy's, x's and W's element type. Every form below.
void backward(GemmType ab, GemmType c, void* dx, float* dW, const void* dy, const void* x, const void* W, int64_t T,
              int64_t in, int64_t out, cudaStream_t stream) {
  if (T == 0) return;
  if (dx) blas_gemm(ab, c, false, false, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in, stream);
  blas_gemm(ab, GemmType::F32, true, false, out, in, T, 1.0f, dy, out, x, in, 1.0f, dW, in, stream);
}

// Whether the library opens, found once per process (a missing one means the tiled kernel).
bool blas_loads() {
  static std::atomic<int> found{-1};
  if (found.load(std::memory_order_acquire) < 0) {
    int ok = 0;
    try {
      load(Library::CublasLt);
      ok = 1;
    } catch (const std::exception&) {  // MEDIX_CUDA_LINEAR=cublaslt says why
    }
    found.store(ok, std::memory_order_release);
  }
  return found.load(std::memory_order_acquire) == 1;
}

// MEDIX_CUDA_LINEAR, read at each call so that a program can compare both paths in one process, and
// whether these operands allow cuBLASLt (null ones, e.g. no dx, do not count).
bool uses_blas(std::initializer_list<const void*> operands) {
  const char* env = std::getenv("MEDIX_CUDA_LINEAR");
  const std::string mode = env ? env : "auto";
  if (mode == "tiled") return false;
  if (mode != "auto" && mode != "cublaslt") fail("MEDIX_CUDA_LINEAR must be auto, cublaslt or tiled, not '", mode, "'");
  if (mode == "cublaslt")
    load(Library::CublasLt);  // asked for: a missing library's error names it and where it looked
  else if (!blas_loads())
    return false;
  for (const void* p : operands)
    if (p && !blas_aligned(p)) return false;
  return true;
}

template <typename WT>
void forward_auto(float* y, const float* x, const WT* W, const float* b, int64_t T, int64_t in, int64_t out,
                  cudaStream_t stream) {
  if (T > 0 && in > 0 && uses_blas({y, x, W}))
    linear_forward_blas(y, x, W, b, T, in, out, stream);
  else
    linear_forward(y, x, W, b, T, in, out, stream);
}
template <typename WT>
void backward_auto(float* dx, float* dW, float* db, const float* dy, const float* x, const WT* W, int64_t T, int64_t in,
                   int64_t out, cudaStream_t stream) {
  if (T > 0 && out > 0 && uses_blas({dx, dW, dy, x, W}))
    linear_backward_blas(dx, dW, db, dy, x, W, T, in, out, stream);
  else
    linear_backward(dx, dW, db, dy, x, W, T, in, out, stream);
}

}  // namespace

void linear_forward_auto(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out,
                         cudaStream_t stream) {
  forward_auto(y, x, W, b, T, in, out, stream);
}
void linear_backward_auto(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                          int64_t in, int64_t out, cudaStream_t stream) {
  backward_auto(dx, dW, db, dy, x, W, T, in, out, stream);
}
void linear_forward_auto(float* y, const float* x, const bf16* W, const float* b, int64_t T, int64_t in, int64_t out,
                         cudaStream_t stream) {
  forward_auto(y, x, W, b, T, in, out, stream);
}
void linear_backward_auto(float* dx, float* dW, float* db, const float* dy, const float* x, const bf16* W, int64_t T,
                          int64_t in, int64_t out, cudaStream_t stream) {
  backward_auto(dx, dW, db, dy, x, W, T, in, out, stream);
}

void linear_forward_blas(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out,
                         cudaStream_t stream) {
  forward(GemmType::F32, GemmType::F32, y, x, W, b, T, in, out, stream);
}
void linear_backward_blas(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                          int64_t in, int64_t out, cudaStream_t stream) {
  backward(GemmType::F32, GemmType::F32, dx, dW, dy, x, W, T, in, out, stream);
  if (db) linear_bias_grad(db, dy, T, out, stream);
}
void linear_forward_blas(bf16* y, const bf16* x, const bf16* W, int64_t T, int64_t in, int64_t out,
                         cudaStream_t stream) {
  forward(GemmType::BF16, GemmType::BF16, y, x, W, nullptr, T, in, out, stream);
}
void linear_backward_blas(bf16* dx, float* dW, const bf16* dy, const bf16* x, const bf16* W, int64_t T, int64_t in,
                          int64_t out, cudaStream_t stream) {
  backward(GemmType::BF16, GemmType::BF16, dx, dW, dy, x, W, T, in, out, stream);
}

void linear_forward_blas(float* y, const float* x, const bf16* W, const float* b, int64_t T, int64_t in, int64_t out,
                         cudaStream_t stream) {
  if (T == 0 || out == 0) return;
  Scratch<bf16> xb(T * in, stream, "linear_forward_blas: bf16 activations");
  to_bf16(xb.get(), x, T * in, stream);
  forward(GemmType::BF16, GemmType::F32, y, xb.get(), W, b, T, in, out, stream);
}

void linear_backward_blas(float* dx, float* dW, float* db, const float* dy, const float* x, const bf16* W, int64_t T,
                          int64_t in, int64_t out, cudaStream_t stream) {
  if (T == 0) return;
  if (db) linear_bias_grad(db, dy, T, out, stream);
  Scratch<bf16> dyb(T * out, stream, "linear_backward_blas: bf16 dy"),
      xb(T * in, stream, "linear_backward_blas: bf16 x");
  to_bf16(dyb.get(), dy, T * out, stream);
  to_bf16(xb.get(), x, T * in, stream);
  backward(GemmType::BF16, GemmType::F32, dx, dW, dyb.get(), xb.get(), W, T, in, out, stream);
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(LinearForward, cuda::linear_forward_auto);
MEDIX_CUDA_OP(LinearBackward, cuda::linear_backward_auto);
MEDIX_CUDA_OP(LinearForwardBf16, cuda::linear_forward_auto);
MEDIX_CUDA_OP(LinearBackwardBf16, cuda::linear_backward_auto);

}  // namespace medix::cuda
