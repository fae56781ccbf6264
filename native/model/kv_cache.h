// A paged KV cache for many sequences: per layer, K and V as [n_blocks * block_size, kv_dim] in
// backend memory, handed out in blocks of block_size token slots.
//
// A sequence is a list of blocks plus its length and token ids. fork() makes a new sequence that
// shares all of its source's blocks (reference counts), so the n samples of a prompt use one copy
// of the prompt's keys; appending to a block that is shared copies it first (copy on write), which
// only ever happens to the last, partly filled block. free() returns a sequence's blocks once no
// other sequence uses them.
//
// The cache stores K and V in the model's compute dtype (config dtype): f32, or bf16 with a bf16
// compute copy (half the bytes; kv_cache_write_bf16 rounds each row once, attention widens it back).
#pragma once
#include <cstdint>
#include <unordered_map>
#include <vector>

#include "../core/backend.h"
#include "../core/bf16.h"

namespace medix {

struct KvCacheConfig {
  int64_t layers = 0, kv_dim = 0;
  int64_t block_size = 16;
  int64_t n_blocks = 0;
  ComputeDType dtype = ComputeDType::f32;
};

struct KvCacheStats {
  int64_t sequences = 0;
  int64_t blocks_total = 0, blocks_free = 0;
  int64_t forks = 0;         // fork() calls so far
  int64_t block_copies = 0;  // copy-on-write copies so far
  ComputeDType dtype = ComputeDType::f32;
  int64_t bytes = 0;  // K and V of every layer, allocated once
};

class KvCache {
 public:
  KvCache(const KvCacheConfig& cfg, Backend& be);
  ~KvCache();
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  const KvCacheConfig& config() const { return cfg_; }
  ComputeDType dtype() const { return cfg_.dtype; }
  // A layer's K or V in its dtype; asking for the other dtype throws.
  float* k(int64_t layer) { return f32(k_, layer); }
  float* v(int64_t layer) { return f32(v_, layer); }
  uint16_t* k_bf16(int64_t layer) { return bf16(k_, layer); }
  uint16_t* v_bf16(int64_t layer) { return bf16(v_, layer); }

  int64_t add_sequence();
  int64_t fork(int64_t src);
  void free(int64_t seq);
  bool has(int64_t seq) const { return seqs_.count(seq) != 0; }
  int64_t length(int64_t seq) const { return get(seq).length; }
  const std::vector<int32_t>& tokens(int64_t seq) const { return get(seq).tokens; }
  const std::vector<int32_t>& blocks(int64_t seq) const { return get(seq).blocks; }

  // Blocks that appending n tokens to seq would take from the free list (including a copy on write).
  int64_t blocks_needed(int64_t seq, int64_t n) const;
  // Appends tokens to seq, allocating blocks as needed, and writes the slot of each new token to
  // slots[n]. Throws (changing nothing) when the free blocks do not suffice.
  void append(int64_t seq, const int32_t* tokens, int64_t n, int32_t* slots);

  KvCacheStats stats() const;

 private:
  struct Sequence {
    std::vector<int32_t> blocks;
    int64_t length = 0;
    std::vector<int32_t> tokens;
  };
  const Sequence& get(int64_t seq) const;
  Sequence& get(int64_t seq);
  float* f32(const std::vector<void*>& kv, int64_t layer) const;
  uint16_t* bf16(const std::vector<void*>& kv, int64_t layer) const;
  int32_t take_block();
  void drop_block(int32_t b);

  KvCacheConfig cfg_;
  Backend& be_;
  int64_t elem_bytes_ = 4;  // 4 (f32) or 2 (bf16)
  std::vector<void*> k_, v_;
  std::vector<int32_t> refcount_;
  std::vector<int32_t> free_;  // a stack: the most recently freed block is reused first
  std::unordered_map<int64_t, Sequence> seqs_;
  int64_t next_id_ = 0;
  KvCacheStats counters_;
};

}  // namespace medix
