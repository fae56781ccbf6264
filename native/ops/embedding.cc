// Token embedding lookup and its gradient (scatter-add into the table).
#include "embedding.h"

#include <cstring>

#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {

void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim) {
  // Rows are independent copies; a chunk of 64 tokens keeps tiny batches on one thread.
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i)
          std::memcpy(out + i * dim, table + static_cast<int64_t>(ids[i]) * dim, sizeof(float) * dim);
      },
      64);
}

void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t n, int64_t dim) {
  // Splitting over tokens would let two threads add into the same row (repeated ids) in an order
  // that depends on timing. Splitting over columns instead gives every table element one owner,
  // which adds the tokens' contributions in token order: bit-identical whatever the thread count.
  // 64 columns per chunk at least, so threads never share a cache line.
  parallel_for(
      dim,
      [&](int64_t c0, int64_t c1) {
        for (int64_t i = 0; i < n; ++i) {
          float* dst = dtable + static_cast<int64_t>(ids[i]) * dim;
          const float* src = dout + i * dim;
          for (int64_t c = c0; c < c1; ++c) dst[c] += src[c];
        }
      },
      64);
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(EmbeddingForward, cpu::embedding_forward);
MEDIX_CPU_OP(EmbeddingBackward, cpu::embedding_backward);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
namespace medix::op_decl {
namespace {

OpDef embedding() {
  const std::vector<AttrSpec> attrs = {integer("vocab", 1, kMaxTokens), integer("dim", 1, kMaxDim)};
  OpDef d = family("embedding", op_ids<EmbeddingForward, EmbeddingBackward>());
  d.forward = {"embeddingForward",
               {ids("ids", "", 0, "vocab"), in("table", "vocab*dim"), out("out", "ids.length*dim")},
               attrs,
               nullptr,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<EmbeddingForward>(t.f("out"), t.i("ids"), t.f("table"), t.n("ids"), a.i("dim"));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"embeddingBackward",
                {in("dout", "ids.length*dim"), ids("ids", "", 0, "vocab"), out("dtable", "vocab*dim")},
                attrs,
                nullptr,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<EmbeddingBackward>(t.f("dtable"), t.f("dout"), t.i("ids"), t.n("ids"), a.i("dim"));
                  return 0.0;
                }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(embedding);

}  // namespace medix::op_decl
