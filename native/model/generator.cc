#include "generator.h"

#include "../core/error.h"

namespace medix {
namespace {

KvCacheConfig cache_config(const Qwen3Config& c, int64_t block_size, int64_t n_blocks) {
  KvCacheConfig k;
  k.layers = c.layers;
  k.kv_dim = c.kv_heads * c.head_dim;
  k.block_size = block_size;
  k.n_blocks = n_blocks;
  return k;
}

}  // namespace

Generator::Generator(Qwen3Model& model, int64_t block_size, int64_t n_blocks)
    : model_(model), be_(model.backend()), cache_(cache_config(model.config(), block_size, n_blocks), be_) {}

Generator::~Generator() {
  if (logits_) be_.release(logits_);
}

GeneratorStats Generator::stats() const {
  GeneratorStats st = counters_;
  st.cache = cache_.stats();
  return st;
}

void Generator::step(const CachedStep& s, const SamplerParams* params, int32_t* tokens, float* logprobs) {
  const int64_t R = s.n_logit_rows, V = model_.config().vocab;
  for (int64_t r = 0; r < R; ++r) check_sampler_params(params[r]);
  // The sequence each logit row belongs to (its token history feeds the repetition penalty).
  std::vector<int64_t> row_seq(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    const int32_t t = s.logit_rows[r];
    int64_t i = 0;
    while (i + 1 < s.n_seqs && s.cu_seqlens[i + 1] <= t) ++i;
    row_seq[r] = s.seq_ids[i];
  }
  if (R > logits_rows_) {
    if (logits_) be_.release(logits_);
    logits_ = nullptr;  // stays empty if the allocation below throws
    logits_rows_ = 0;
    logits_ = static_cast<float*>(be_.alloc(sizeof(float) * R * V));
    logits_rows_ = R;
  }
  model_.forward_cached(s, cache_, logits_);
  counters_.steps += 1;
  counters_.tokens_computed += s.T;
  if (R == 0) return;

  // Histories after the step: prompt and every token fed so far (the last sampled one included).
  std::vector<int64_t> offsets(static_cast<size_t>(R) + 1, 0);
  std::vector<int32_t> history;
  for (int64_t r = 0; r < R; ++r) {
    if (params[r].repetition_penalty != 1.0f) {
      const auto& h = cache_.tokens(row_seq[r]);
      history.insert(history.end(), h.begin(), h.end());
    }
    offsets[r + 1] = static_cast<int64_t>(history.size());
  }
  ScopedBuffer history_dev(be_, sizeof(int32_t) * history.size());
  ScopedBuffer tokens_dev(be_, sizeof(int32_t) * R);
  ScopedBuffer logprobs_dev(be_, sizeof(float) * R);
  be_.from_host(history_dev.as<void>(), history.data(), sizeof(int32_t) * history.size());
  const SampleBatch b{R, V, params, history_dev.as<const int32_t>(), offsets.data()};
  be_.sample(tokens_dev.as<int32_t>(), logprobs_dev.as<float>(), logits_, b);
  be_.to_host(tokens, tokens_dev.as<void>(), sizeof(int32_t) * R);
  be_.to_host(logprobs, logprobs_dev.as<void>(), sizeof(float) * R);
  counters_.tokens_sampled += R;
}

}  // namespace medix
