// The Backend's bf16 entries (weights, KV cache) for a backend that does not implement them: a clear
// refusal naming the backend, so a model asked to compute in bf16 there fails at its first product
// instead of misreading its weights.
#include "backend.h"
#include "error.h"

namespace medix {

void Backend::linear_forward_bf16(float*, const float*, const uint16_t*, const float*, int64_t, int64_t, int64_t) {
  fail("linear_forward_bf16: the ", name(), " backend has no bf16 weights");
}

void Backend::linear_backward_bf16(float*, float*, float*, const float*, const float*, const uint16_t*, int64_t,
                                   int64_t, int64_t) {
  fail("linear_backward_bf16: the ", name(), " backend has no bf16 weights");
}

void Backend::kv_cache_write_bf16(uint16_t*, uint16_t*, const float*, const float*, const int32_t*, int64_t, int64_t) {
  fail("kv_cache_write_bf16: the ", name(), " backend has no bf16 KV cache");
}

void Backend::paged_attention_forward_bf16(float*, const float*, const uint16_t*, const uint16_t*,
                                           const PagedAttentionShape&) {
  fail("paged_attention_forward_bf16: the ", name(), " backend has no bf16 KV cache");
}

void Backend::moe_experts_forward_bf16(float*, float*, float*, float*, const float*, const uint16_t*, const uint16_t*,
                                       const float*, const int32_t*, const int32_t*, const MoeShape&) {
  fail("moe_experts_forward_bf16: the ", name(), " backend has no bf16 weights");
}

void Backend::moe_experts_backward_bf16(float*, float*, float*, float*, const float*, const float*, const uint16_t*,
                                        const uint16_t*, const float*, const int32_t*, const int32_t*, const float*,
                                        const float*, const float*, const MoeShape&) {
  fail("moe_experts_backward_bf16: the ", name(), " backend has no bf16 weights");
}

void Backend::to_bf16(uint16_t*, const float*, int64_t) { fail("to_bf16: the ", name(), " backend has no bf16"); }

}  // namespace medix
