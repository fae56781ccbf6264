// Residual connections: elementwise sums.
#include "residual.h"

#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {

// Below this many elements a thread hand-off costs more than the adds themselves.
constexpr int64_t kMinChunk = 1 << 14;

void add_forward(float* out, const float* a, const float* b, int64_t n) {
  parallel_for(
      n,
      [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) out[i] = a[i] + b[i];
      },
      kMinChunk);
}

void add_inplace(float* dst, const float* src, int64_t n) {
  parallel_for(
      n,
      [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) dst[i] += src[i];
      },
      kMinChunk);
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(AddForward, cpu::add_forward);
MEDIX_CPU_OP(AddInplace, cpu::add_inplace);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
namespace medix::op_decl {
namespace {

// The residual connection. Its backward passes dout to both inputs, which callers do with add_inplace.
OpDef add() {
  OpDef d = family("add", op_ids<AddForward>());
  d.forward = {"addForward",
               {in("a", ""), in("b", "a.length"), out("out", "a.length")},
               {},
               nullptr,
               [](Backend& be, const Attrs&, const Tensors& t) {
                 be.run<AddForward>(t.f("out"), t.f("a"), t.f("b"), t.n("a"));
                 return 0.0;
               }};
  return d;
}

OpDef add_inplace() {
  OpDef d = family("add_inplace", op_ids<AddInplace>());
  d.forward = {"addInplace",
               {inout("dst", ""), in("src", "dst.length")},
               {},
               nullptr,
               [](Backend& be, const Attrs&, const Tensors& t) {
                 be.run<AddInplace>(t.f("dst"), t.f("src"), t.n("dst"));
                 return 0.0;
               }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(add);
MEDIX_OP_TABLE_ENTRY(add_inplace);

}  // namespace medix::op_decl
