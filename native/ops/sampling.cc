// Sampling on the CPU in O(vocab) per row, with no sort.
//
// Every filter keeps a prefix of the vocabulary in the order "larger w first, lower id first among
// equal w": top-k the first k, top-p the shortest prefix holding the mass, min-p everything down to
// a value. So the kept set is described by a boundary (a value, and how many of the ids with exactly
// that value are in, lowest first), found by a radix selection over the values' bits: a histogram of
// count or probability mass per bucket of the top 11 bits, then the next 11 bits of the one bucket
// where the prefix ends, then the last 10. Three passes over a shrinking candidate set instead of a
// sort of 151,936 ids (which top-p on a flat distribution needed before).
//
// Exponentials use the vectorised polynomial of simd.h, stored once per row; sums of probability
// mass are in double so that the many tiny tail terms are not lost. The row's log-sum-exp for the
// returned log-prob comes from the same sum when no penalty changed the logits.
#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "../core/error.h"
#include "../core/rng.h"
#include "../core/simd.h"
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

using namespace simd;

// Unsigned keys in the order of the floats: a > b <=> key(a) > key(b). -0 is made +0 first (x + 0
// does that), so the two zeros tie as they do when compared as floats.
inline uint32_t order_key(float x) {
  x += 0.0f;
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// A prefix of the order: every id with key > key, and the first `ties` ids (ascending) with key == key.
struct Boundary {
  uint32_t key = 0;
  int64_t ties = std::numeric_limits<int64_t>::max();
};

// Per-thread buffers, kept between calls (no allocation per step once grown).
struct Scratch {
  std::vector<float> w, e, tmp;  // penalised logits / temperature; exp(w - wmax); row_lse's
  std::vector<int32_t> cand, bucket, dedup;
};
thread_local Scratch scratch;

// The ids still in play: all of [0, V) (ids == nullptr) or a list in ascending order.
struct Cands {
  const int32_t* ids;
  int64_t n;
  int32_t at(int64_t j) const { return ids ? ids[j] : static_cast<int32_t>(j); }
};

// The shortest prefix of `c` (in the order) whose summed weight reaches `target`; all of c if the
// total falls short by rounding. weight(id) is 1 (top-k) or the unnormalised probability (top-p).
// *taken: the summed weight of the prefix.
template <class Weight>
Boundary select_prefix(const Cands& c, const float* w, Weight weight, double target, double* taken,
                       std::vector<int32_t>& bucket) {
  // Digits of the key, high to low: bits 31-21, 20-10, 9-0.
  constexpr int kShift[3] = {21, 10, 0};
  constexpr uint32_t kMask[3] = {0x7FF, 0x7FF, 0x3FF};
  double hist[2048];
  double above = 0.0;  // weight of the ids known to be in (keys above the boundary so far)
  uint32_t prefix = 0, prefix_mask = 0;
  bucket.clear();
  for (int level = 0; level < 3; ++level) {
    const int64_t n = level == 0 ? c.n : static_cast<int64_t>(bucket.size());
    auto id_at = [&](int64_t j) { return level == 0 ? c.at(j) : bucket[j]; };
    std::fill(hist, hist + kMask[level] + 1, 0.0);
    for (int64_t j = 0; j < n; ++j) {
      const int32_t i = id_at(j);
      hist[(order_key(w[i]) >> kShift[level]) & kMask[level]] += weight(i);
    }
    int64_t d = kMask[level];
    int64_t lowest = -1;  // lowest non-empty digit: the boundary if the target is never reached
    for (int64_t k = 0; k <= static_cast<int64_t>(kMask[level]); ++k)
      if (hist[k] > 0) {
        lowest = k;
        break;
      }
    for (; d > lowest && above + hist[d] < target; --d) above += hist[d];
    if (d < 0) d = 0;
    prefix |= static_cast<uint32_t>(d) << kShift[level];
    prefix_mask |= kMask[level] << kShift[level];
    // Keep the ids of the boundary digit, in ascending order (in place from level 1 on).
    int64_t kept = 0;
    for (int64_t j = 0; j < n; ++j) {
      const int32_t i = id_at(j);
      if ((order_key(w[i]) & prefix_mask) == prefix) {
        if (level == 0) bucket.push_back(i);
        else bucket[kept++] = i;
      }
    }
    if (level > 0) bucket.resize(static_cast<size_t>(kept));
  }
  // bucket: the ids whose key is exactly the boundary value, ascending; take them until the target.
  Boundary b{prefix, 0};
  for (const int32_t i : bucket) {
    if (above >= target) break;
    above += weight(i);
    ++b.ties;
  }
  *taken = above;
  return b;
}

// Visits the kept ids of c in ascending order until fn(id) returns true.
template <class Fn>
void for_each_kept(const Cands& c, const float* w, const Boundary& b, Fn fn) {
  int64_t ties = 0;
  for (int64_t j = 0; j < c.n; ++j) {
    const int32_t i = c.at(j);
    const uint32_t k = order_key(w[i]);
    if ((k > b.key || (k == b.key && ties++ < b.ties)) && fn(i)) return;
  }
}

// log sum_i exp(x_i / temperature) over a row, in float exponentials summed in double.
double row_lse(const float* x, int64_t V, float temperature, std::vector<float>& tmp) {
  tmp.resize(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) tmp[i] = x[i] / temperature;
  const float m = row_max(tmp.data(), V);
  double sum = 0.0;
  int64_t i = 0;
  for (; i + kLanes <= V; i += kLanes) sum += hsum(exp8(load(tmp.data() + i) - m));
  for (; i < V; ++i) sum += std::exp(static_cast<double>(tmp[i] - m));
  return m + std::log(sum);
}

// What one row draws from: greedy's token, or the kept set (a boundary over candidates) with the
// unnormalised probabilities e and their sum.
struct RowPlan {
  bool greedy = false;
  int32_t token = 0;  // greedy only
  Cands cands{nullptr, 0};
  Boundary bound;
  double kept_mass = 0.0;
  double lse = 0.0;  // log-sum-exp of the raw logits / temperature (temperature 1 when greedy)
};

RowPlan plan_row(Scratch& s, const float* logits, int64_t V, const SamplerParams& p, const int32_t* history,
                 int64_t n_history) {
  RowPlan plan;
  std::vector<float>& w = s.w;
  w.assign(logits, logits + V);
  // Repetition penalty, once per distinct token of the history.
  if (p.repetition_penalty != 1.0f && n_history > 0) {
    s.dedup.assign(history, history + n_history);
    std::sort(s.dedup.begin(), s.dedup.end());
    s.dedup.erase(std::unique(s.dedup.begin(), s.dedup.end()), s.dedup.end());
    for (const int32_t i : s.dedup) w[i] = w[i] > 0 ? w[i] / p.repetition_penalty : w[i] * p.repetition_penalty;
  }
  const bool penalised = p.repetition_penalty != 1.0f && n_history > 0;
  if (p.temperature == 0.0f) {
    plan.greedy = true;
    plan.token = static_cast<int32_t>(std::max_element(w.begin(), w.end()) - w.begin());  // lowest id on ties
    plan.lse = row_lse(logits, V, 1.0f, s.tmp);
    return plan;
  }
  for (float& x : w) x /= p.temperature;
  const float wmax = row_max(w.data(), V);
  std::vector<float>& e = s.e;
  e.resize(static_cast<size_t>(V));
  double total = 0.0;
  int64_t i = 0;
  for (; i + kLanes <= V; i += kLanes) {
    const v8f x = exp8(load(w.data() + i) - wmax);
    store(e.data() + i, x);
    total += hsum(x);
  }
  for (; i < V; ++i) total += e[i] = static_cast<float>(std::exp(static_cast<double>(w[i] - wmax)));
  plan.lse = penalised ? row_lse(logits, V, p.temperature, s.tmp) : wmax + std::log(total);

  const float* wp = w.data();
  const float* ep = e.data();
  auto mass = [ep](int32_t id) { return static_cast<double>(ep[id]); };
  plan.cands = Cands{nullptr, V};
  plan.kept_mass = total;
  if (p.top_k > 0 && p.top_k < V) {
    double count = 0;
    const Boundary top = select_prefix(plan.cands, wp, [](int32_t) { return 1.0; }, p.top_k, &count, s.bucket);
    s.cand.clear();
    plan.kept_mass = 0.0;
    for_each_kept(plan.cands, wp, top, [&](int32_t id) {
      s.cand.push_back(id);
      plan.kept_mass += ep[id];
      return false;
    });
    plan.cands = Cands{s.cand.data(), static_cast<int64_t>(s.cand.size())};
  }
  if (p.top_p < 1.0f)
    plan.bound = select_prefix(plan.cands, wp, mass, static_cast<double>(p.top_p) * plan.kept_mass, &plan.kept_mass,
                               s.bucket);
  if (p.min_p > 0.0f) {
    // p_i >= min_p * p_max  <=>  w_i >= wmax + log(min_p); the largest w is always kept.
    const uint32_t floor = order_key(wmax + std::log(p.min_p));
    if (floor > plan.bound.key) plan.bound = Boundary{floor};
  }
  if (p.min_p > 0.0f || p.top_p < 1.0f) {
    // The draw walks the kept ids summing e in id order; its total must be that same sum.
    plan.kept_mass = 0.0;
    for_each_kept(plan.cands, wp, plan.bound, [&](int32_t id) {
      plan.kept_mass += ep[id];
      return false;
    });
  } else if (!(p.top_k > 0 && p.top_k < V)) {
    plan.kept_mass = 0.0;
    for (int64_t j = 0; j < V; ++j) plan.kept_mass += ep[j];
  }
  return plan;
}

}  // namespace

void sampling_distribution(std::vector<int32_t>& ids, std::vector<double>& probs, const float* logits, int64_t vocab,
                           const SamplerParams& p, const int32_t* history, int64_t n_history) {
  check_sampler_params(p);
  Scratch& s = scratch;
  const RowPlan plan = plan_row(s, logits, vocab, p, history, n_history);
  ids.clear();
  probs.clear();
  if (plan.greedy) {
    ids.push_back(plan.token);
    probs.push_back(1.0);
    return;
  }
  for_each_kept(plan.cands, s.w.data(), plan.bound, [&](int32_t id) {
    ids.push_back(id);
    probs.push_back(s.e[id] / plan.kept_mass);
    return false;
  });
}

void sample(int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b) {
  for (int64_t r = 0; r < b.rows; ++r) check_sampler_params(b.params[r]);
  parallel_for(b.rows, [&](int64_t r0, int64_t r1) {
    Scratch& s = scratch;
    for (int64_t r = r0; r < r1; ++r) {
      const SamplerParams& p = b.params[r];
      const float* row = logits + r * b.vocab;
      const int64_t h0 = b.history_offsets[r], h1 = b.history_offsets[r + 1];
      const RowPlan plan = plan_row(s, row, b.vocab, p, b.history + h0, h1 - h0);
      int32_t token = plan.token;
      if (!plan.greedy) {
        // Inverse CDF in id order: the first kept id whose cumulative mass reaches u * total. The
        // cumulative sum ends at exactly kept_mass (same terms, same order) > u * kept_mass, so the
        // walk always stops (were it not to, `token` would be the last kept id).
        const double target = uniform01(sampler_stream_seed(p.seed, p.stream), p.counter) * plan.kept_mass;
        double cum = 0.0;
        for_each_kept(plan.cands, s.w.data(), plan.bound, [&](int32_t id) {
          token = id;
          cum += s.e[id];
          return target <= cum;
        });
      }
      const float t = p.temperature == 0.0f ? 1.0f : p.temperature;
      tokens[r] = token;
      logprobs[r] = static_cast<float>(row[token] / t - plan.lse);
    }
  });
}

}  // namespace cpu
}  // namespace medix
