// The angle of each pair is computed as Hugging Face does: the inverse frequency rounded to float32,
// times the integer coordinate in float32; cos and sin then in float32.
#include "vision_rope.h"

#include <cmath>
#include <vector>

#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {

std::vector<float> vision_rope_inverse_frequencies(int64_t D, float theta) {
  const int64_t dim = D / 2, q = D / 4;
  std::vector<float> f(q);
  for (int64_t i = 0; i < q; ++i)
    f[i] = static_cast<float>(1.0 / std::pow(static_cast<double>(theta), static_cast<double>(2 * i) / dim));
  return f;
}

namespace {

// sign +1 rotates forward (out = R x); -1 applies the transpose and accumulates (backward).
void rotate(float* out, const float* x, const int32_t* coords, int64_t T, int64_t heads, int64_t D, float theta,
            float sign, bool accumulate) {
  const std::vector<float> f = vision_rope_inverse_frequencies(D, theta);
  const int64_t half = D / 2, q = D / 4;
  parallel_for(T, [&](int64_t t0, int64_t t1) {
    std::vector<float> c(half), s(half);
    for (int64_t t = t0; t < t1; ++t) {
      for (int64_t j = 0; j < half; ++j) {
        const float angle = static_cast<float>(coords[2 * t + (j < q ? 0 : 1)]) * f[j % q];
        c[j] = std::cos(angle);
        s[j] = sign * std::sin(angle);
      }
      for (int64_t h = 0; h < heads; ++h) {
        const float* xr = x + (t * heads + h) * D;
        float* yr = out + (t * heads + h) * D;
        for (int64_t j = 0; j < half; ++j) {
          const float a = xr[j], b = xr[j + half];
          const float ya = a * c[j] - b * s[j], yb = b * c[j] + a * s[j];
          if (accumulate) {
            yr[j] += ya;
            yr[j + half] += yb;
          } else {
            yr[j] = ya;
            yr[j + half] = yb;
          }
        }
      }
    }
  });
}

}  // namespace

void vision_rope_forward(float* out, const float* x, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                         float theta) {
  rotate(out, x, coords, T, heads, D, theta, 1.0f, false);
}

void vision_rope_backward(float* dx, const float* dout, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                          float theta) {
  rotate(dx, dout, coords, T, heads, D, theta, -1.0f, true);
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(VisionRopeForward, cpu::vision_rope_forward);
MEDIX_CPU_OP(VisionRopeBackward, cpu::vision_rope_backward);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
namespace medix::op_decl {
namespace {

OpDef vision_rope() {
  const std::vector<AttrSpec> attrs = {integer("T", 1, kMaxTokens), integer("heads", 1, kMaxHeads),
                                       integer("headDim", 4, 65536), number_or("theta", 10000.0)};
  auto check = [](Attrs& a, const Lengths&) {
    MEDIX_CHECK(a.i("headDim") % 4 == 0, "option 'headDim' must be a multiple of 4");
  };
  OpDef d = family("vision_rope", op_ids<VisionRopeForward, VisionRopeBackward>());
  d.forward = {"visionRopeForward",
               {in("x", "T*heads*headDim"), positions("coords", "2*T"), out("out", "T*heads*headDim")},
               attrs,
               check,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<VisionRopeForward>(t.f("out"), t.f("x"), t.i("coords"), a.i("T"), a.i("heads"), a.i("headDim"),
                                           static_cast<float>(a.f("theta")));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"visionRopeBackward",
                {in("dout", "T*heads*headDim"), positions("coords", "2*T"), out("dx", "T*heads*headDim")},
                attrs,
                check,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<VisionRopeBackward>(t.f("dx"), t.f("dout"), t.i("coords"), a.i("T"), a.i("heads"),
                                             a.i("headDim"), static_cast<float>(a.f("theta")));
                  return 0.0;
                }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(vision_rope);

}  // namespace medix::op_decl
