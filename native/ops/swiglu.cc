// SwiGLU gate of the MLP: out = silu(gate) * up.
//
// Eight elements at a time with simd.h's exp8 (with scalar std::exp it took a tenth of a 512-token
// prefill); the last partial vector takes the same path, so an element's bits do not depend on where
// a thread's range ends.
#include "swiglu.h"

#include "../core/simd.h"
#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {
namespace {

using namespace simd;

constexpr int64_t kMinChunk = 1 << 13;

// sigmoid(g) written so the exponential never overflows: e = e^-|g|, then 1 / (1 + e) for g >= 0
// and e / (1 + e) below. exp8 clamps its argument at -87, so e is set to 0 there: large |g| gives
// exactly 1 or 0.
inline v8f sigmoid8(v8f g) {
  const v8f neg_abs = g < splat(0.0f) ? g : -g;
  const v8f e = neg_abs < splat(-87.0f) ? splat(0.0f) : exp8(neg_abs);
  return (g >= splat(0.0f) ? splat(1.0f) : e) / (1.0f + e);
}

// f(i, k) for the vectors of [b, e): k = 8 elements from i, then one partial vector of k < 8.
template <typename F>
inline void for_each8(int64_t b, int64_t e, const F& f) {
  int64_t i = b;
  for (; i + kLanes <= e; i += kLanes) f(i, kLanes);
  if (i < e) f(i, e - i);
}

v8f load_n(const float* p, int64_t n) { return n == kLanes ? load(p) : load_partial(p, n, 0.0f); }
void store_n(float* p, v8f v, int64_t n) {
  if (n == kLanes)
    store(p, v);
  else
    store_partial(p, v, n);
}

}  // namespace

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for_each8(b, e, [&](int64_t i, int64_t k) {
          const v8f g = load_n(gate + i, k);
          store_n(out + i, g * sigmoid8(g) * load_n(up + i, k), k);
        });
      },
      kMinChunk);
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  // d silu(g)/dg = s + g s (1 - s) = s (1 + g (1 - s)), with s = sigmoid(g).
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for_each8(b, e, [&](int64_t i, int64_t k) {
          const v8f g = load_n(gate + i, k), s = sigmoid8(g), d = load_n(dout + i, k);
          store_n(dgate + i, load_n(dgate + i, k) + d * load_n(up + i, k) * s * (1.0f + g * (1.0f - s)), k);
          store_n(dup + i, load_n(dup + i, k) + d * g * s, k);
        });
      },
      kMinChunk);
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(SwigluForward, cpu::swiglu_forward);
MEDIX_CPU_OP(SwigluBackward, cpu::swiglu_backward);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
namespace medix::op_decl {
namespace {

OpDef swiglu() {
  OpDef d = family("swiglu", op_ids<SwigluForward, SwigluBackward>());
  d.forward = {"swigluForward",
               {in("gate", ""), in("up", "gate.length"), out("out", "gate.length")},
               {},
               nullptr,
               [](Backend& be, const Attrs&, const Tensors& t) {
                 be.run<SwigluForward>(t.f("out"), t.f("gate"), t.f("up"), t.n("gate"));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"swigluBackward",
                {in("dout", ""), in("gate", "dout.length"), in("up", "dout.length"), out("dgate", "dout.length"),
                 out("dup", "dout.length")},
                {},
                nullptr,
                [](Backend& be, const Attrs&, const Tensors& t) {
                  be.run<SwigluBackward>(t.f("dgate"), t.f("dup"), t.f("dout"), t.f("gate"), t.f("up"), t.n("dout"));
                  return 0.0;
                }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(swiglu);

}  // namespace medix::op_decl
