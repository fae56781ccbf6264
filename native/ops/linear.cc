// Linear layer in Hugging Face layout (W is [out, in]): y = x W^T + b. The matrix products go
// through medix::gemm, or medix::gemv_nt for a few rows (decoding), which streams W once instead of
// packing it; only the bias and its gradient are computed here. With bf16 weights the few-row path
// widens W as it streams it (gemv_nt_bf16); the many-row paths widen a panel of W rows at a time into
// an f32 buffer and run gemm on it, so the GEMM kernels (and OpenBLAS) stay f32-only.
#include "linear.h"

#include <algorithm>
#include <vector>

#include "../core/bf16.h"
#include "../core/gemm.h"
#include "../core/gemv.h"
#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {

namespace {

// y[t] += b for every row (after the few-row kernel).
void add_bias(float* y, const float* b, int64_t T, int64_t out) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t o = 0; o < out; ++o) y[t * out + o] += b[o];
}

// y[t] = b for every row, for gemm to accumulate onto (beta = 1).
void fill_bias(float* y, const float* b, int64_t T, int64_t out) {
  parallel_for(
      T,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t)
          for (int64_t o = 0; o < out; ++o) y[t * out + o] = b[o];
      },
      std::max<int64_t>(1, 16384 / out));
}

// db += column sums of dy. Each thread owns a range of columns and walks the tokens in order, so the
// sum's order never depends on the thread count.
void bias_grad(float* db, const float* dy, int64_t T, int64_t out) {
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

// Rows of a bf16 W widened per panel: about 1 MiB of f32, a multiple of 16 rows (the GEMM tiles'
// widths), so a panel stays in L2/L3 between its widening and the GEMM's packing of it.
int64_t panel_rows(int64_t in) {
  const int64_t rows = (int64_t(1) << 18) / std::max<int64_t>(1, in);
  return std::max<int64_t>(16, rows / 16 * 16);
}

// Calls fn(o0, o1, Wf) for consecutive panels of W's rows, Wf the panel widened to f32 ([o1-o0, in]).
template <typename Fn>
void for_each_panel(const uint16_t* W, int64_t in, int64_t out, Fn fn) {
  const int64_t rows = std::min(out, panel_rows(in));
  std::vector<float> panel(static_cast<size_t>(rows * in));
  for (int64_t o0 = 0; o0 < out; o0 += rows) {
    const int64_t o1 = std::min(out, o0 + rows);
    parallel_for((o1 - o0) * in,
                 [&](int64_t i0, int64_t i1) { bf16_to_f32(panel.data() + i0, W + o0 * in + i0, i1 - i0); },
                 int64_t(1) << 15);
    fn(o0, o1, panel.data());
  }
}

// The products for either weight type: f32 W straight to the kernels; bf16 W through the few-row
// kernel's widening, or in panels widened for gemm.
void few_rows(float* y, const float* x, const float* W, int64_t T, int64_t in, int64_t out) {
  gemv_nt(T, out, in, x, in, W, in, y, out);
}
void few_rows(float* y, const float* x, const uint16_t* W, int64_t T, int64_t in, int64_t out) {
  gemv_nt_bf16(T, out, in, x, in, W, in, y, out);
}

// y (+)= x W^T (beta 1 adds onto y, 0 overwrites it).
void many_rows(float* y, const float* x, const float* W, float beta, int64_t T, int64_t in, int64_t out) {
  gemm(false, true, T, out, in, 1.0f, x, in, W, in, beta, y, out);
}
void many_rows(float* y, const float* x, const uint16_t* W, float beta, int64_t T, int64_t in, int64_t out) {
  // y[:, o0:o1] (+)= x Wf^T, one panel of output columns at a time.
  for_each_panel(W, in, out, [&](int64_t o0, int64_t o1, const float* Wf) {
    gemm(false, true, T, o1 - o0, in, 1.0f, x, in, Wf, in, beta, y + o0, out);
  });
}

// dx[T,in] += dy[T,out] W[out,in].
void add_dx(float* dx, const float* dy, const float* W, int64_t T, int64_t in, int64_t out) {
  gemm(false, false, T, in, out, 1.0f, dy, out, W, in, 1.0f, dx, in);
}
void add_dx(float* dx, const float* dy, const uint16_t* W, int64_t T, int64_t in, int64_t out) {
  // dx += dy[:, o0:o1] Wf[o0:o1, :], summed over the panels of W's rows in order.
  for_each_panel(W, in, out, [&](int64_t o0, int64_t o1, const float* Wf) {
    gemm(false, false, T, in, o1 - o0, 1.0f, dy + o0, out, Wf, in, 1.0f, dx, in);
  });
}

template <typename TW>
void forward(float* y, const float* x, const TW* W, const float* b, int64_t T, int64_t in, int64_t out) {
  if (T == 0 || out == 0) return;
  if (T <= kGemvMaxRows) {
    few_rows(y, x, W, T, in, out);
    if (b) add_bias(y, b, T, out);
    return;
  }
  if (b) fill_bias(y, b, T, out);
  many_rows(y, x, W, b ? 1.0f : 0.0f, T, in, out);
}

template <typename TW>
void backward(float* dx, float* dW, float* db, const float* dy, const float* x, const TW* W, int64_t T, int64_t in,
              int64_t out) {
  if (T == 0) return;
  if (dx) add_dx(dx, dy, W, T, in, out);
  gemm(true, false, out, in, T, 1.0f, dy, out, x, in, 1.0f, dW, in);  // dW[out,in] += dy^T x, in f32 either way
  if (db) bias_grad(db, dy, T, out);
}

}  // namespace

void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out) {
  forward(y, x, W, b, T, in, out);
}

void linear_forward_bf16(float* y, const float* x, const uint16_t* W, const float* b, int64_t T, int64_t in,
                         int64_t out) {
  forward(y, x, W, b, T, in, out);
}

void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                     int64_t in, int64_t out) {
  backward(dx, dW, db, dy, x, W, T, in, out);
}

void linear_backward_bf16(float* dx, float* dW, float* db, const float* dy, const float* x, const uint16_t* W,
                          int64_t T, int64_t in, int64_t out) {
  backward(dx, dW, db, dy, x, W, T, in, out);
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(LinearForward, cpu::linear_forward);
MEDIX_CPU_OP(LinearBackward, cpu::linear_backward);
MEDIX_CPU_OP(LinearForwardBf16, cpu::linear_forward_bf16);
MEDIX_CPU_OP(LinearBackwardBf16, cpu::linear_backward_bf16);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
namespace medix::op_decl {
namespace {

std::vector<AttrSpec> linear_attrs(bool backward) {
  std::vector<AttrSpec> a = {integer("T", 1, kMaxTokens), integer("in", 1, kMaxDim), integer("out", 1, kMaxDim)};
  if (backward) a.push_back(boolean_or("bias", false));
  return a;
}

double linear_forward_f32(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<LinearForward>(t.f("y"), t.f("x"), t.f("W"), t.f("b"), a.i("T"), a.i("in"), a.i("out"));
  return 0.0;
}

double linear_forward_bf16(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<LinearForwardBf16>(t.f("y"), t.f("x"), t.h("W"), t.f("b"), a.i("T"), a.i("in"), a.i("out"));
  return 0.0;
}

double linear_backward_f32(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<LinearBackward>(t.f("dx"), t.f("dW"), t.f("db"), t.f("dy"), t.f("x"), t.f("W"), a.i("T"), a.i("in"),
                         a.i("out"));
  return 0.0;
}

double linear_backward_bf16(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<LinearBackwardBf16>(t.f("dx"), t.f("dW"), t.f("db"), t.f("dy"), t.f("x"), t.h("W"), a.i("T"), a.i("in"),
                             a.i("out"));
  return 0.0;
}

// W in the entry's dtype: f32, or bf16 (a compute copy; linear.h's *_bf16: f32 activations and sums).
OpDef linear(DType dtype) {
  const bool bf16 = dtype == DType::BF16;
  const ArgSpec W = typed(in("W", "out*in"), dtype);
  OpDef d =
      family("linear", bf16 ? op_ids<LinearForwardBf16, LinearBackwardBf16>() : op_ids<LinearForward, LinearBackward>(),
             dtype);
  d.forward = {bf16 ? "linearForwardBf16" : "linearForward",
               {in("x", "T*in"), W, in_opt("b", "out"), out("y", "T*out")},
               linear_attrs(false),
               nullptr,
               bf16 ? linear_forward_bf16 : linear_forward_f32};
  d.has_backward = true;
  d.backward = {
      bf16 ? "linearBackwardBf16" : "linearBackward",
      {in("dy", "T*out"), in("x", "T*in"), W, out("dx", "T*in"), out("dW", "out*in"), out("db", "out", "bias")},
      linear_attrs(true),
      nullptr,
      bf16 ? linear_backward_bf16 : linear_backward_f32};
  return d;
}

OpDef linear_f32() { return linear(DType::F32); }

OpDef linear_bf16() { return linear(DType::BF16); }

}  // namespace

MEDIX_OP_TABLE_ENTRY(linear_f32);
MEDIX_OP_TABLE_ENTRY(linear_bf16);

}  // namespace medix::op_decl
