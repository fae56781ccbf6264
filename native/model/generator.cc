#include "generator.h"

#include <algorithm>

#include "../core/error.h"

namespace medix {
namespace {

// The cache stores keys and values in the model's compute dtype.
KvCacheConfig cache_config(const Qwen3Model& model, int64_t block_size, int64_t n_blocks) {
  const Qwen3Config& c = model.config();
  KvCacheConfig k;
  k.dtype = model.compute_dtype();
  k.layers = c.layers;
  k.kv_dim = c.kv_heads * c.head_dim;
  k.block_size = block_size;
  k.n_blocks = n_blocks;
  return k;
}

}  // namespace

Generator::Generator(Qwen3Model& model, int64_t block_size, int64_t n_blocks)
    : model_(model),
      be_(model.backend()),
      cache_(cache_config(model, block_size, n_blocks), be_),
      logits_(be_),
      history_dev_(be_),
      tokens_dev_(be_),
      logprobs_dev_(be_) {}

GeneratorStats Generator::stats() const {
  GeneratorStats st = counters_;
  st.cache = cache_.stats();
  return st;
}

void Generator::step(const CachedStep& s, const SamplerParams* params, int32_t* tokens, float* logprobs) {
  const int64_t R = s.n_logit_rows, V = model_.config().vocab;
  for (int64_t r = 0; r < R; ++r) check_sampler_params(params[r]);
  // The sequence each logit row belongs to (its token history feeds the repetition penalty).
  row_seq_.resize(static_cast<size_t>(R));
  for (int64_t r = 0; r < R; ++r) {
    const int32_t t = s.logit_rows[r];
    int64_t i = 0;
    while (i + 1 < s.n_seqs && s.cu_seqlens[i + 1] <= t) ++i;
    row_seq_[r] = s.seq_ids[i];
  }
  float* logits = logits_.get<float>(sizeof(float) * std::max<int64_t>(R, 1) * V);
  model_.forward_cached(s, cache_, logits);
  counters_.steps += 1;
  counters_.tokens_computed += s.T;
  if (R == 0) return;

  // Histories after the step: prompt and every token fed so far (the last sampled one included).
  offsets_.assign(static_cast<size_t>(R) + 1, 0);
  history_.clear();
  for (int64_t r = 0; r < R; ++r) {
    if (params[r].repetition_penalty != 1.0f) {
      const auto& h = cache_.tokens(row_seq_[r]);
      history_.insert(history_.end(), h.begin(), h.end());
    }
    offsets_[r + 1] = static_cast<int64_t>(history_.size());
  }
  int32_t* history_dev = history_dev_.get<int32_t>(sizeof(int32_t) * std::max<size_t>(history_.size(), 1));
  int32_t* tokens_dev = tokens_dev_.get<int32_t>(sizeof(int32_t) * R);
  float* logprobs_dev = logprobs_dev_.get<float>(sizeof(float) * R);
  be_.from_host(history_dev, history_.data(), sizeof(int32_t) * history_.size());
  const SampleBatch b{R, V, params, history_dev, offsets_.data()};
  be_.run<Sample>(tokens_dev, logprobs_dev, logits, b);
  be_.to_host(tokens, tokens_dev, sizeof(int32_t) * R);
  be_.to_host(logprobs, logprobs_dev, sizeof(float) * R);
  counters_.tokens_sampled += R;
}

}  // namespace medix
