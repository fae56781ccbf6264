#include "kv_cache.h"

#include "../core/error.h"

namespace medix {

KvCache::KvCache(const KvCacheConfig& cfg, Backend& be) : cfg_(cfg), be_(be) {
  MEDIX_CHECK(cfg.layers > 0 && cfg.kv_dim > 0, "KV cache: layers and kv_dim must be > 0");
  MEDIX_CHECK(cfg.block_size > 0 && cfg.block_size <= 4096, "KV cache: block_size must be in [1, 4096], got ",
              cfg.block_size);
  MEDIX_CHECK(cfg.n_blocks > 0 && cfg.n_blocks * cfg.block_size < (int64_t(1) << 31),
              "KV cache: the number of blocks must be > 0 and blocks * block_size below 2^31, got ", cfg.n_blocks);
  elem_bytes_ = cfg.dtype == ComputeDType::bf16 ? 2 : 4;
  const size_t bytes = static_cast<size_t>(elem_bytes_ * cfg.n_blocks * cfg.block_size * cfg.kv_dim);
  // Unfilled: a slot is written (kv_cache_write) before attention reads it, and attention reads only
  // slots below a sequence's length (copy on write copies whole blocks, unwritten slots as bits). A fill would cost a
  // pass over the whole cache (2 GiB by default) per engine, one per rollout, and on the CPU would commit every page
  // although few are used.
  try {
    for (int64_t l = 0; l < cfg.layers; ++l) {
      k_.push_back(be_.alloc_uninit(bytes));
      v_.push_back(be_.alloc_uninit(bytes));
    }
  } catch (...) {
    for (void* p : k_) be_.release(p);
    for (void* p : v_) be_.release(p);
    throw;
  }
  counters_.dtype = cfg.dtype;
  counters_.bytes = static_cast<int64_t>(2 * bytes) * cfg.layers;
  refcount_.assign(static_cast<size_t>(cfg.n_blocks), 0);
  for (int64_t b = cfg.n_blocks - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
  counters_.blocks_total = cfg.n_blocks;
}

KvCache::~KvCache() {
  for (void* p : k_) be_.release(p);
  for (void* p : v_) be_.release(p);
}

float* KvCache::f32(const std::vector<void*>& kv, int64_t layer) const {
  MEDIX_CHECK(cfg_.dtype == ComputeDType::f32, "KV cache: f32 keys/values asked of a ", compute_dtype_name(cfg_.dtype),
              " cache");
  return static_cast<float*>(kv[layer]);
}

uint16_t* KvCache::bf16(const std::vector<void*>& kv, int64_t layer) const {
  MEDIX_CHECK(cfg_.dtype == ComputeDType::bf16, "KV cache: bf16 keys/values asked of a ",
              compute_dtype_name(cfg_.dtype), " cache");
  return static_cast<uint16_t*>(kv[layer]);
}

const KvCache::Sequence& KvCache::get(int64_t seq) const {
  auto it = seqs_.find(seq);
  MEDIX_CHECK(it != seqs_.end(), "KV cache: no sequence ", seq, " (never added, or already freed)");
  return it->second;
}
KvCache::Sequence& KvCache::get(int64_t seq) {
  return const_cast<Sequence&>(static_cast<const KvCache*>(this)->get(seq));
}

int64_t KvCache::add_sequence() {
  seqs_.emplace(next_id_, Sequence{});
  return next_id_++;
}

int64_t KvCache::fork(int64_t src) {
  Sequence copy = get(src);
  for (int32_t b : copy.blocks) ++refcount_[b];
  seqs_.emplace(next_id_, std::move(copy));
  ++counters_.forks;
  return next_id_++;
}

void KvCache::free(int64_t seq) {
  Sequence& s = get(seq);
  for (int32_t b : s.blocks) drop_block(b);
  seqs_.erase(seq);
}

int32_t KvCache::take_block() {
  const int32_t b = free_.back();
  free_.pop_back();
  refcount_[b] = 1;
  return b;
}

void KvCache::drop_block(int32_t b) {
  if (--refcount_[b] == 0) free_.push_back(b);
}

int64_t KvCache::blocks_needed(int64_t seq, int64_t n) const {
  const Sequence& s = get(seq);
  const int64_t bs = cfg_.block_size;
  const int64_t have = static_cast<int64_t>(s.blocks.size());
  const int64_t need = (s.length + n + bs - 1) / bs - have;
  // Writing into a partly filled block that another sequence shares copies it first.
  const bool copy = n > 0 && s.length % bs != 0 && refcount_[s.blocks.back()] > 1;
  return need + (copy ? 1 : 0);
}

void KvCache::append(int64_t seq, const int32_t* tokens, int64_t n, int32_t* slots) {
  const int64_t needed = blocks_needed(seq, n);
  MEDIX_CHECK(needed <= static_cast<int64_t>(free_.size()), "KV cache: appending ", n, " tokens to sequence ", seq,
              " needs ", needed, " free blocks of ", cfg_.block_size, " tokens, only ", free_.size(), " of ",
              cfg_.n_blocks, " are free");
  Sequence& s = get(seq);
  const int64_t bs = cfg_.block_size;
  if (n > 0 && s.length % bs != 0 && refcount_[s.blocks.back()] > 1) {
    const int32_t old = s.blocks.back(), fresh = take_block();
    const size_t block = static_cast<size_t>(bs * cfg_.kv_dim * elem_bytes_);  // bytes, f32 or bf16 cache
    for (int64_t l = 0; l < cfg_.layers; ++l) {
      char* k = static_cast<char*>(k_[l]);
      char* v = static_cast<char*>(v_[l]);
      be_.copy_bytes(k + fresh * block, k + old * block, block);
      be_.copy_bytes(v + fresh * block, v + old * block, block);
    }
    drop_block(old);
    s.blocks.back() = fresh;
    ++counters_.block_copies;
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pos = s.length + i;
    if (pos % bs == 0) s.blocks.push_back(take_block());
    slots[i] = static_cast<int32_t>(s.blocks[pos / bs] * bs + pos % bs);
  }
  s.length += n;
  s.tokens.insert(s.tokens.end(), tokens, tokens + n);
}

KvCacheStats KvCache::stats() const {
  KvCacheStats st = counters_;
  st.sequences = static_cast<int64_t>(seqs_.size());
  st.blocks_free = static_cast<int64_t>(free_.size());
  return st;
}

}  // namespace medix
