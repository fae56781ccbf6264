// Sampling on the CPU. A row of 151,936 logits is filtered without a full sort: top-k is a
// selection (nth_element), top-p sorts only a growing prefix of the largest candidates until it
// holds the requested mass, min-p is a threshold. Sums are in double so that the mass of the many
// tiny tail probabilities is not lost.
#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "../core/error.h"
#include "../core/rng.h"
#include "../core/threads.h"

namespace medix {

uint64_t sampler_stream_seed(uint64_t seed, uint64_t stream) { return splitmix64(seed ^ splitmix64(stream + 1)); }

void check_sampler_params(const SamplerParams& p) {
  MEDIX_CHECK(p.temperature >= 0 && std::isfinite(p.temperature), "sampling: temperature must be >= 0, got ",
              p.temperature);
  MEDIX_CHECK(p.top_p > 0 && p.top_p <= 1, "sampling: top_p must be in (0, 1], got ", p.top_p);
  MEDIX_CHECK(p.min_p >= 0 && p.min_p <= 1, "sampling: min_p must be in [0, 1], got ", p.min_p);
  MEDIX_CHECK(p.repetition_penalty > 0 && std::isfinite(p.repetition_penalty),
              "sampling: repetition_penalty must be > 0, got ", p.repetition_penalty);
}

namespace cpu {
namespace {

// Log-sum-exp of logits / temperature over the whole row.
double row_lse(const float* logits, int64_t V, float temperature) {
  float m = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < V; ++i) m = std::max(m, logits[i] / temperature);
  double sum = 0.0;
  for (int64_t i = 0; i < V; ++i) sum += std::exp(static_cast<double>(logits[i] / temperature - m));
  return m + std::log(sum);
}

// w = penalised logits (temperature not applied yet).
void penalised(std::vector<float>& w, const float* logits, int64_t V, float penalty, const int32_t* history,
               int64_t n_history) {
  w.assign(logits, logits + V);
  if (penalty == 1.0f) return;
  // Each distinct token is penalised once, however often it occurs: mark first, then apply.
  std::vector<uint8_t> seen(static_cast<size_t>(V), 0);
  for (int64_t i = 0; i < n_history; ++i) seen[history[i]] = 1;
  for (int64_t i = 0; i < V; ++i)
    if (seen[i]) w[i] = w[i] > 0 ? w[i] / penalty : w[i] * penalty;
}

int32_t argmax(const std::vector<float>& w) {
  return static_cast<int32_t>(std::max_element(w.begin(), w.end()) - w.begin());  // first maximum: lowest id
}

// Steps 3-5 on w (already divided by the temperature): returns the kept ids in ascending order.
std::vector<int32_t> kept_ids(const std::vector<float>& w, const SamplerParams& p) {
  const int64_t V = static_cast<int64_t>(w.size());
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  // Larger value first, lower id first among equal values: a total order, so the kept set is unique.
  auto before = [&](int32_t a, int32_t b) { return w[a] > w[b] || (w[a] == w[b] && a < b); };
  if (p.top_k > 0 && p.top_k < V) {
    std::nth_element(ids.begin(), ids.begin() + p.top_k, ids.end(), before);
    ids.resize(static_cast<size_t>(p.top_k));
  }
  float wmax = -std::numeric_limits<float>::infinity();
  for (int32_t i : ids) wmax = std::max(wmax, w[i]);
  if (p.top_p < 1.0f) {
    double total = 0.0;
    for (int32_t i : ids) total += std::exp(static_cast<double>(w[i] - wmax));
    const double want = static_cast<double>(p.top_p) * total;
    const size_t n = ids.size();
    // Sort a prefix of the largest, 4x longer each round, until it holds the mass.
    for (size_t m = std::min<size_t>(64, n);; m = std::min(n, m * 4)) {
      std::partial_sort(ids.begin(), ids.begin() + m, ids.end(), before);
      double cum = 0.0;
      size_t keep = 0;
      while (keep < m && cum < want) cum += std::exp(static_cast<double>(w[ids[keep++]] - wmax));
      if (cum >= want || m == n) {
        ids.resize(std::max<size_t>(keep, 1));
        break;
      }
    }
  }
  if (p.min_p > 0.0f) {
    const float floor = wmax + std::log(p.min_p);  // p_i >= min_p * p_max  <=>  w_i >= wmax + log(min_p)
    ids.erase(std::remove_if(ids.begin(), ids.end(), [&](int32_t i) { return w[i] < floor; }), ids.end());
  }
  // Only top-k and top-p reorder; min-p's erase keeps the order (the full vocabulary stays sorted).
  if ((p.top_k > 0 && p.top_k < V) || p.top_p < 1.0f) std::sort(ids.begin(), ids.end());
  return ids;
}

// The kept ids and their probabilities (softmax over the kept w); greedy gives one id.
void distribution(std::vector<int32_t>& ids, std::vector<double>& probs, std::vector<float>& w, const float* logits,
                  int64_t V, const SamplerParams& p, const int32_t* history, int64_t n_history) {
  penalised(w, logits, V, p.repetition_penalty, history, n_history);
  if (p.temperature == 0.0f) {
    ids.assign(1, argmax(w));
    probs.assign(1, 1.0);
    return;
  }
  for (float& x : w) x /= p.temperature;
  ids = kept_ids(w, p);
  float wmax = -std::numeric_limits<float>::infinity();
  for (int32_t i : ids) wmax = std::max(wmax, w[i]);
  probs.resize(ids.size());
  double total = 0.0;
  for (size_t j = 0; j < ids.size(); ++j) total += probs[j] = std::exp(static_cast<double>(w[ids[j]] - wmax));
  for (double& q : probs) q /= total;
}

}  // namespace

void sampling_distribution(std::vector<int32_t>& ids, std::vector<double>& probs, const float* logits, int64_t vocab,
                           const SamplerParams& p, const int32_t* history, int64_t n_history) {
  check_sampler_params(p);
  std::vector<float> w;
  distribution(ids, probs, w, logits, vocab, p, history, n_history);
}

void sample(int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b) {
  for (int64_t r = 0; r < b.rows; ++r) check_sampler_params(b.params[r]);
  parallel_for(b.rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> w;
    std::vector<int32_t> ids;
    std::vector<double> probs;
    for (int64_t r = r0; r < r1; ++r) {
      const SamplerParams& p = b.params[r];
      const float* row = logits + r * b.vocab;
      const int64_t h0 = b.history_offsets[r], h1 = b.history_offsets[r + 1];
      distribution(ids, probs, w, row, b.vocab, p, b.history + h0, h1 - h0);
      int32_t token = ids.back();  // also the fallback if rounding leaves u above the last cumulative sum
      if (ids.size() > 1) {
        const double u = uniform01(sampler_stream_seed(p.seed, p.stream), p.counter);
        double cum = 0.0;
        for (size_t j = 0; j < ids.size(); ++j) {
          cum += probs[j];
          if (u <= cum) {
            token = ids[j];
            break;
          }
        }
      }
      const float t = p.temperature == 0.0f ? 1.0f : p.temperature;
      tokens[r] = token;
      logprobs[r] = static_cast<float>(row[token] / t - row_lse(row, b.vocab, t));
    }
  });
}

}  // namespace cpu
}  // namespace medix
