// GELU, forward and backward:
//   tanh: 0.5 x (1 + tanh(c (x + a x^3))), c = sqrt(2/pi), a = 0.044715
//   erf:  0.5 x (1 + erf(x / sqrt(2)))
#include "gelu.h"

#include <cmath>

#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {
namespace {

constexpr int64_t kMinChunk = 1 << 13;
constexpr float kC = 0.7978845608028654f;  // sqrt(2/pi)
constexpr float kA = 0.044715f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

inline float value(float x, GeluKind kind) {
  if (kind == GeluKind::kTanh) return 0.5f * x * (1.0f + std::tanh(kC * (x + kA * x * x * x)));
  return 0.5f * x * (1.0f + std::erf(x * kInvSqrt2));
}

inline float derivative(float x, GeluKind kind) {
  if (kind == GeluKind::kTanh) {
    const float th = std::tanh(kC * (x + kA * x * x * x));
    return 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * kC * (1.0f + 3.0f * kA * x * x);
  }
  return 0.5f * (1.0f + std::erf(x * kInvSqrt2)) + x * kInvSqrt2Pi * std::exp(-0.5f * x * x);
}

}  // namespace

void gelu_forward(float* out, const float* x, int64_t n, GeluKind kind) {
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[i] = value(x[i], kind);
      },
      kMinChunk);
}

void gelu_backward(float* dx, const float* dout, const float* x, int64_t n, GeluKind kind) {
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) dx[i] += dout[i] * derivative(x[i], kind);
      },
      kMinChunk);
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(GeluForward, cpu::gelu_forward);
MEDIX_CPU_OP(GeluBackward, cpu::gelu_backward);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
namespace medix::op_decl {
namespace {

cpu::GeluKind gelu_kind(const Attrs& a) { return a.i("kind") == 0 ? cpu::GeluKind::kTanh : cpu::GeluKind::kErf; }

OpDef gelu() {
  const std::vector<AttrSpec> attrs = {choice_or("kind", {"tanh", "erf"}, 0)};
  OpDef d = family("gelu", op_ids<GeluForward, GeluBackward>());
  d.forward = {"geluForward",
               {in("x", ""), out("out", "x.length")},
               attrs,
               nullptr,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<GeluForward>(t.f("out"), t.f("x"), t.n("x"), gelu_kind(a));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"geluBackward",
                {in("dout", "x.length"), in("x", ""), out("dx", "x.length")},
                attrs,
                nullptr,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<GeluBackward>(t.f("dx"), t.f("dout"), t.f("x"), t.n("x"), gelu_kind(a));
                  return 0.0;
                }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(gelu);

}  // namespace medix::op_decl
