// Generation state of one model: the paged KV cache of its sequences and one step = forward with
// the cache, then sampling. Scheduling (which sequences run, stops, streaming) is the caller's
// (src/generate/engine.ts); this keeps only what must live next to the weights.
#pragma once
#include <cstdint>
#include <vector>

#include "../ops/sampling.h"
#include "kv_cache.h"
#include "qwen3.h"

namespace medix {

struct GeneratorStats {
  KvCacheStats cache;
  int64_t steps = 0;
  int64_t tokens_computed = 0;  // tokens run through the model (prompt tokens and decode inputs)
  int64_t tokens_sampled = 0;
};

class Generator {
 public:
  Generator(Qwen3Model& model, int64_t block_size, int64_t n_blocks);
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  KvCache& cache() { return cache_; }
  GeneratorStats stats() const;

  // Runs the step, then draws one token for each of its logit rows: row r with params[r] and the
  // token history of the sequence that row belongs to. tokens/logprobs: host, n_logit_rows each.
  void step(const CachedStep& s, const SamplerParams* params, int32_t* tokens, float* logprobs);

 private:
  Qwen3Model& model_;
  Backend& be_;
  KvCache cache_;
  GrowableBuffer logits_;  // [rows, vocab]
  // Per-step buffers, kept so that a step allocates nothing once they have grown.
  GrowableBuffer history_dev_, tokens_dev_, logprobs_dev_;
  std::vector<int64_t> row_seq_, offsets_;
  std::vector<int32_t> history_;
  GeneratorStats counters_;
};

}  // namespace medix
