// Linear layer in Hugging Face layout (W is [out, in]): y = x W^T + b. The matrix products go
// through medix::gemm, or medix::gemv_nt for a few rows (decoding), which streams W once instead of
// packing it; only the bias and its gradient are computed here.
#include "linear.h"

#include <algorithm>
#include <vector>

#include "../core/gemm.h"
#include "../core/gemv.h"
#include "../core/threads.h"

namespace medix::cpu {

void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out) {
  if (T == 0 || out == 0) return;
  if (T <= kGemvMaxRows) {
    gemv_nt(T, out, in, x, in, W, in, y, out);
    if (b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t o = 0; o < out; ++o) y[t * out + o] += b[o];
    return;
  }
  // With a bias, y starts as b in every row and gemm accumulates onto it (beta = 1).
  if (b) {
    parallel_for(
        T,
        [&](int64_t t0, int64_t t1) {
          for (int64_t t = t0; t < t1; ++t)
            for (int64_t o = 0; o < out; ++o) y[t * out + o] = b[o];
        },
        std::max<int64_t>(1, 16384 / out));
  }
  gemm(false, true, T, out, in, 1.0f, x, in, W, in, b ? 1.0f : 0.0f, y, out);
}

void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                     int64_t in, int64_t out) {
  if (T == 0) return;
  if (dx) gemm(false, false, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);  // dx[T,in] += dy[T,out] W[out,in]
  gemm(true, false, out, in, T, 1.0f, dy, out, x, in, 1.0f, dW, in);           // dW[out,in] += dy^T x
  if (db) {
    // Column sums of dy. Each thread owns a range of columns and walks the tokens in order, so the
    // sum's order never depends on the thread count.
    parallel_for(
        out,
        [&](int64_t o0, int64_t o1) {
          std::vector<double> acc(static_cast<size_t>(o1 - o0), 0.0);
          for (int64_t t = 0; t < T; ++t)
            for (int64_t o = o0; o < o1; ++o) acc[o - o0] += dy[t * out + o];
          for (int64_t o = o0; o < o1; ++o) db[o] += static_cast<float>(acc[o - o0]);
        },
        64);
  }
}

}  // namespace medix::cpu
