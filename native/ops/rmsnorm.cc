// RMSNorm, forward and backward, as Hugging Face's Qwen3RMSNorm computes it in float32:
//   rstd = 1 / sqrt(mean(x^2) + eps);  out = w * (x * rstd).
#include "rmsnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim, float eps) {
  // Rows are independent. The sum of squares is accumulated in double so the mean is the correctly
  // rounded float32 value whatever dim is (torch's float32 pairwise sum lands within a few ulps).
  parallel_for(
      rows,
      [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) {
          const float* xr = x + r * dim;
          double ss = 0.0;
          for (int64_t i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
          const float variance = static_cast<float>(ss / static_cast<double>(dim));
          const float rs = 1.0f / std::sqrt(variance + eps);
          if (rstd) rstd[r] = rs;
          float* yr = out + r * dim;
          // Same rounding order as Hugging Face: normalise first, then scale by the weight.
          for (int64_t i = 0; i < dim; ++i) yr[i] = w[i] * (xr[i] * rs);
        }
      },
      // About 4096 elements per chunk at least, so short rows (per-head q/k norm) are batched.
      std::max<int64_t>(1, 4096 / std::max<int64_t>(1, dim)));
}

namespace {

// dx for one row. With g = dout * w and xhat = x * rstd:
//   dx = rstd * (g - xhat * mean(g * xhat)).
void row_dx(float* dx, const float* dout, const float* x, const float* w, float rs, int64_t dim) {
  double dot = 0.0;
  for (int64_t i = 0; i < dim; ++i) dot += static_cast<double>(dout[i]) * w[i] * x[i];
  // mean(g * xhat) = rstd * sum(g * x) / dim
  const float m = static_cast<float>(dot * rs / static_cast<double>(dim));
  for (int64_t i = 0; i < dim; ++i) dx[i] += rs * (dout[i] * w[i] - x[i] * rs * m);
}

}  // namespace

void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                      int64_t rows, int64_t dim) {
  // dw[i] = sum over rows of dout[r,i] * x[r,i] * rstd[r]. The rows are cut into a fixed number of
  // chunks (independent of the thread count); each chunk sums its rows in order into its own
  // partial vector, and the partials are then added in chunk order: bit-identical on any pool size.
  const int64_t chunks = fixed_chunks(rows, 16);
  std::vector<float> partial(dw ? static_cast<size_t>(chunks * dim) : 0, 0.0f);
  parallel_for(chunks, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t r = c * rows / chunks; r < (c + 1) * rows / chunks; ++r) {
        const float* dr = dout + r * dim;
        const float* xr = x + r * dim;
        if (dw) {
          float* pw = partial.data() + c * dim;
          for (int64_t i = 0; i < dim; ++i) pw[i] += dr[i] * (xr[i] * rstd[r]);
        }
        if (dx) row_dx(dx + r * dim, dr, xr, w, rstd[r], dim);
      }
    }
  });
  if (!dw) return;
  parallel_for(
      dim,
      [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          float s = 0.0f;
          for (int64_t c = 0; c < chunks; ++c) s += partial[c * dim + i];
          dw[i] += s;
        }
      },
      256);
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(RmsnormForward, cpu::rmsnorm_forward);
MEDIX_CPU_OP(RmsnormBackward, cpu::rmsnorm_backward);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
namespace medix::op_decl {
namespace {

OpDef rmsnorm() {
  const std::vector<AttrSpec> shape = {integer("rows", 1, kMaxTokens), integer("dim", 1, kMaxDim)};
  std::vector<AttrSpec> fwd_attrs = shape;
  fwd_attrs.push_back(number("eps"));
  OpDef d = family("rmsnorm", op_ids<RmsnormForward, RmsnormBackward>());
  d.forward = {"rmsnormForward",
               {in("x", "rows*dim"), in("w", "dim"), out("out", "rows*dim"), out("rstd", "rows")},
               fwd_attrs,
               positive_eps,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<RmsnormForward>(t.f("out"), t.f("rstd"), t.f("x"), t.f("w"), a.i("rows"), a.i("dim"),
                                        static_cast<float>(a.f("eps")));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"rmsnormBackward",
                {in("dout", "rows*dim"), in("x", "rows*dim"), in("w", "dim"), in("rstd", "rows"), out("dx", "rows*dim"),
                 out("dw", "dim")},
                shape,
                nullptr,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<RmsnormBackward>(t.f("dx"), t.f("dw"), t.f("dout"), t.f("x"), t.f("w"), t.f("rstd"),
                                          a.i("rows"), a.i("dim"));
                  return 0.0;
                }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(rmsnorm);

}  // namespace medix::op_decl
