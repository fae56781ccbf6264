// LayerNorm forward and backward. Row statistics are accumulated in double so they are the correctly
// rounded float32 values whatever the row length; the weight and bias gradients are summed over rows
// in a fixed chunking, so the result does not depend on the thread count.
#include "layernorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {

void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int64_t rows, int64_t dim, float eps) {
  parallel_for(
      rows,
      [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const float* xr = x + r * dim;
          double s = 0.0;
          for (int64_t i = 0; i < dim; ++i) s += xr[i];
          const double mu = s / static_cast<double>(dim);
          double ss = 0.0;
          for (int64_t i = 0; i < dim; ++i) ss += (xr[i] - mu) * (xr[i] - mu);
          const float m = static_cast<float>(mu);
          const float rs = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
          mean[r] = m;
          rstd[r] = rs;
          float* yr = out + r * dim;
          for (int64_t i = 0; i < dim; ++i) yr[i] = (xr[i] - m) * rs * w[i] + b[i];
        }
      },
      std::max<int64_t>(1, 4096 / std::max<int64_t>(1, dim)));
}

void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int64_t dim) {
  // With xhat = (x - mean) * rstd and g = dout * w:  dx = rstd * (g - mean(g) - xhat * mean(g * xhat)),
  // dw = sum_rows dout * xhat, db = sum_rows dout.
  const int64_t chunks = fixed_chunks(rows, 16);
  const bool params = dw || db;
  std::vector<float> pw(params ? static_cast<size_t>(chunks * dim) : 0, 0.0f);
  std::vector<float> pb(params ? static_cast<size_t>(chunks * dim) : 0, 0.0f);
  parallel_for(chunks, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t r = c * rows / chunks; r < (c + 1) * rows / chunks; ++r) {
        const float* dr = dout + r * dim;
        const float* xr = x + r * dim;
        const float m = mean[r], rs = rstd[r];
        if (params) {
          for (int64_t i = 0; i < dim; ++i) {
            pw[c * dim + i] += dr[i] * ((xr[i] - m) * rs);
            pb[c * dim + i] += dr[i];
          }
        }
        if (!dx) continue;
        double sg = 0.0, sgx = 0.0;
        for (int64_t i = 0; i < dim; ++i) {
          const double g = static_cast<double>(dr[i]) * w[i];
          sg += g;
          sgx += g * ((xr[i] - m) * rs);
        }
        const float mg = static_cast<float>(sg / dim), mgx = static_cast<float>(sgx / dim);
        float* dxr = dx + r * dim;
        for (int64_t i = 0; i < dim; ++i) dxr[i] += rs * (dr[i] * w[i] - mg - (xr[i] - m) * rs * mgx);
      }
    }
  });
  if (!params) return;
  for (int64_t i = 0; i < dim; ++i) {
    float sw = 0.0f, sb = 0.0f;
    for (int64_t c = 0; c < chunks; ++c) {
      sw += pw[c * dim + i];
      sb += pb[c * dim + i];
    }
    if (dw) dw[i] += sw;
    if (db) db[i] += sb;
  }
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(LayernormForward, cpu::layernorm_forward);
MEDIX_CPU_OP(LayernormBackward, cpu::layernorm_backward);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
namespace medix::op_decl {
namespace {

OpDef layernorm() {
  const std::vector<AttrSpec> shape = {integer("rows", 1, kMaxTokens), integer("dim", 1, kMaxDim)};
  std::vector<AttrSpec> fwd_attrs = shape;
  fwd_attrs.push_back(number("eps"));
  OpDef d = family("layernorm", op_ids<LayernormForward, LayernormBackward>());
  d.forward = {"layernormForward",
               {in("x", "rows*dim"), in("w", "dim"), in("b", "dim"), out("out", "rows*dim"), out("mean", "rows"),
                out("rstd", "rows")},
               fwd_attrs,
               positive_eps,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<LayernormForward>(t.f("out"), t.f("mean"), t.f("rstd"), t.f("x"), t.f("w"), t.f("b"),
                                          a.i("rows"), a.i("dim"), static_cast<float>(a.f("eps")));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"layernormBackward",
                {in("dout", "rows*dim"), in("x", "rows*dim"), in("w", "dim"), in("mean", "rows"), in("rstd", "rows"),
                 out("dx", "rows*dim"), out("dw", "dim"), out("db", "dim")},
                shape,
                nullptr,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<LayernormBackward>(t.f("dx"), t.f("dw"), t.f("db"), t.f("dout"), t.f("x"), t.f("w"),
                                            t.f("mean"), t.f("rstd"), a.i("rows"), a.i("dim"));
                  return 0.0;
                }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(layernorm);

}  // namespace medix::op_decl
