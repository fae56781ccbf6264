// Attention of new tokens against a paged KV cache (inference: prefill and decode).
//
// The cache of one layer holds K (and likewise V) as [n_slots, n_kv_heads, head_dim]; slots are
// grouped in blocks of block_size consecutive slots, and a sequence's keys live in the blocks its
// block table lists: key j of sequence s is in slot block_tables[s * max_blocks + j / block_size] *
// block_size + j % block_size. Blocks can be shared between sequences (n samples of one prompt
// share the prompt's blocks), which is why keys are reached through a table rather than packed.
//
// The cache holds f32 or, with a bf16 compute copy (the KV cache follows the compute dtype), bf16
// (core/bf16.h): kv_cache_write_bf16 rounds each new row with bf16.h's conversion, and
// paged_attention_forward_bf16 widens keys and values to f32 as it reads them (exactly), with f32
// scores, softmax and sums: it is paged_attention_forward on an f32 cache holding the widened values,
// to the order of f32 sums.
//
// kv_cache_write stores the K/V rows of T new tokens in the slots given by slots[T].
// paged_attention_forward: query t (of sequence seq_of_token[t]) attends to the first
// n_keys[t] keys of its sequence (causality: a new token at cache index i sees keys 0..i, so
// n_keys = i + 1, its own key written beforehand). q, out: [T, n_heads, head_dim]; query head h
// reads kv head h / (n_heads / n_kv_heads); scores are scaled by `scale`.
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

namespace medix {

struct PagedAttentionShape {
  int64_t T = 0;
  int64_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
  int64_t block_size = 0;
  const int32_t* block_tables = nullptr;  // [n_seqs, max_blocks]
  int64_t max_blocks = 0;
  const int32_t* seq_of_token = nullptr;  // [T], row of block_tables
  const int32_t* n_keys = nullptr;        // [T], >= 1
  float scale = 0.0f;
};

namespace cpu {

// k_cache[slots[t]] = k[t], v_cache[slots[t]] = v[t]; rows of kv_dim floats.
void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                    int64_t kv_dim);

void paged_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                             const PagedAttentionShape& s);

void kv_cache_write_bf16(uint16_t* k_cache, uint16_t* v_cache, const float* k, const float* v, const int32_t* slots,
                         int64_t T, int64_t kv_dim);
void paged_attention_forward_bf16(float* out, const float* q, const uint16_t* k_cache, const uint16_t* v_cache,
                                  const PagedAttentionShape& s);

}  // namespace cpu

// The pointers in a PagedAttentionShape, for the device-memory guard (core/backend_op.h).
inline void visit_memory(MemoryArgs& m, const PagedAttentionShape& s) {
  m.push_back({"s.block_tables", s.block_tables, false});
  m.push_back({"s.seq_of_token", s.seq_of_token, false});
  m.push_back({"s.n_keys", s.n_keys, false});
}

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct KvCacheWrite : BackendOp<KvCacheWrite, decltype(cpu::kv_cache_write)> {
  static constexpr const char* name = "kv_cache_write";
  static constexpr OpKind kind = OpKind::Decode;
  static constexpr OpArg args[] = {{"k_cache"}, {"v_cache"}, {"k"}, {"v"}, {"slots"}, {"T"}, {"kv_dim"}};
};
struct PagedAttentionForward : BackendOp<PagedAttentionForward, decltype(cpu::paged_attention_forward)> {
  static constexpr const char* name = "paged_attention_forward";
  static constexpr OpKind kind = OpKind::Decode;
  static constexpr OpArg args[] = {{"out"}, {"q"}, {"k_cache"}, {"v_cache"}, {"s"}};
};
struct KvCacheWriteBf16 : BackendOp<KvCacheWriteBf16, decltype(cpu::kv_cache_write_bf16)> {
  static constexpr const char* name = "kv_cache_write_bf16";
  static constexpr OpKind kind = OpKind::Decode;
  static constexpr OpArg args[] = {{"k_cache"}, {"v_cache"}, {"k"}, {"v"}, {"slots"}, {"T"}, {"kv_dim"}};
};
struct PagedAttentionForwardBf16 : BackendOp<PagedAttentionForwardBf16, decltype(cpu::paged_attention_forward_bf16)> {
  static constexpr const char* name = "paged_attention_forward_bf16";
  static constexpr OpKind kind = OpKind::Decode;
  static constexpr OpArg args[] = {{"out"}, {"q"}, {"k_cache"}, {"v_cache"}, {"s"}};
};

}  // namespace medix
