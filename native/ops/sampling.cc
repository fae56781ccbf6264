// Sampling on the CPU in O(vocab) per row, with no sort.
//
// Every filter keeps a prefix of the vocabulary in the order "larger w first, lower id first among
// equal w": top-k the first k, top-p the shortest prefix holding the mass, min-p everything down to
// a value. So the kept set is described by a boundary (a value, and how many of the ids with exactly
// that value are in, lowest first), found by a radix selection over the bits of the values: a
// histogram of count or probability mass per digit of the top 11 bits, then of the next 11 bits
// within the one digit where the prefix ends, then of the last 10. Four passes over the row instead
// of a sort of 151,936 ids (which top-p on a flat distribution needed before).
//
// Exponentials use the vectorised polynomial of simd.h, stored once per row, with the ids outside
// the kept set zeroed; the draw finds its block of 64 ids from per-block sums and walks only that
// block. Sums of probability mass are in double so that the many tiny tail terms are not lost. The
// row's log-sum-exp for the returned log-prob comes from the same exponentials when no penalty
// changed the logits.
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

bool is_greedy(const SamplerParams& p) { return p.temperature < kGreedyTemperature; }

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
  std::vector<float> w, e, tmp;  // penalised logits / temperature; exp(w - wmax); scratch
  std::vector<double> blocks;    // sums of e per kBlock ids
  std::vector<int32_t> cand, dedup;
};
thread_local Scratch scratch;

// The ids still in play: all of [0, V) (ids == nullptr) or a list in ascending order.
struct Cands {
  const int32_t* ids;
  int64_t n;
  int32_t at(int64_t j) const { return ids ? ids[j] : static_cast<int32_t>(j); }
};

// The shortest prefix of `c` (in the order) whose summed weight reaches `target`; all of c if the
// total falls short by rounding. weight(id) is 1 (top-k) or the unnormalised probability (top-p);
// ids with equal w have equal weight. Each level narrows the boundary value by one digit of its key
// (bits 31-21, 20-10, 9-0), then a last pass takes the ids holding exactly that value, lowest first.
template <class Weight>
Boundary select_prefix(const Cands& c, const float* w, Weight weight, double target) {
  constexpr int kShift[3] = {21, 10, 0};
  constexpr int64_t kDigits[3] = {2048, 2048, 1024};
  double hist[2048];
  double above = 0.0;  // weight of the ids above the boundary found so far
  uint32_t prefix = 0, prefix_mask = 0;
  for (int level = 0; level < 3; ++level) {
    const int64_t digits = kDigits[level];
    const uint32_t digit_mask = static_cast<uint32_t>(digits - 1);
    std::fill(hist, hist + digits, 0.0);
    for (int64_t j = 0; j < c.n; ++j) {
      const int32_t i = c.at(j);
      const uint32_t k = order_key(w[i]);
      if ((k & prefix_mask) == prefix) hist[(k >> kShift[level]) & digit_mask] += weight(i);
    }
    int64_t lowest = 0;  // the boundary if the target is never reached
    while (lowest < digits - 1 && hist[lowest] == 0) ++lowest;
    int64_t d = digits - 1;
    for (; d > lowest; --d) {
      if (above + hist[d] >= target) break;
      above += hist[d];
    }
    prefix |= static_cast<uint32_t>(d) << kShift[level];
    prefix_mask |= digit_mask << kShift[level];
  }
  Boundary b{prefix, 0};
  for (int64_t j = 0; j < c.n && above < target; ++j) {
    const int32_t i = c.at(j);
    if (order_key(w[i]) == prefix) {
      above += weight(i);
      ++b.ties;
    }
  }
  return b;
}

// Whether the ids of c in ascending order are kept: calls fn(id, kept) for each.
template <class Fn>
void walk_kept(const Cands& c, const float* w, const Boundary& b, Fn fn) {
  int64_t ties = 0;
  for (int64_t j = 0; j < c.n; ++j) {
    const int32_t i = c.at(j);
    const uint32_t k = order_key(w[i]);
    fn(i, k > b.key || (k == b.key && ties++ < b.ties));
  }
}

// A row's log-sum-exp at a temperature, kept as max + log sum_i exp((x_i - max) / temperature) so
// that neither a tiny temperature nor a huge logit overflows: a log-prob is then
// (x_i - max) / temperature - log_sum, computed in double.
struct RowLse {
  float max = 0.0f;
  double log_sum = 0.0;
  double logprob(float x, float temperature) const { return (static_cast<double>(x) - max) / temperature - log_sum; }
};

// Floats exponentiated, summed in double.
RowLse row_lse(const float* x, int64_t V, float temperature, std::vector<float>& tmp) {
  tmp.resize(static_cast<size_t>(V));
  const float m = row_max(x, V);
  for (int64_t i = 0; i < V; ++i) tmp[i] = (x[i] - m) / temperature;
  double sum = 0.0;
  int64_t i = 0;
  for (; i + kLanes <= V; i += kLanes) sum += hsum(exp8(load(tmp.data() + i)));
  if (i < V) sum += hsum(lanes_below(V - i) ? exp8(load_partial(tmp.data() + i, V - i, 0.0f)) : splat(0.0f));
  return RowLse{m, std::log(sum)};
}

// The first non-finite logit of a row, or -1.
int64_t first_non_finite(const float* x, int64_t V) {
  for (int64_t i = 0; i < V; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}

// Ids per block of the draw's cumulative sums: the draw finds its block from the block sums, then
// walks only inside it.
constexpr int64_t kBlock = 64;

// Hugging Face's penalty (positive logits divided, others multiplied), kept within the float range: a
// penalty below 1 could carry a logit near FLT_MAX to infinity, and the shift below would then subtract
// infinity from itself. kernels/sampling.cu clamps the same way, so the two samplers agree there too.
inline float penalise(float logit, float penalty) {
  const float w = logit > 0 ? logit / penalty : logit * penalty;
  return std::clamp(w, -std::numeric_limits<float>::max(), std::numeric_limits<float>::max());
}

// What one row draws from. Greedy: the token. Otherwise scratch.e holds exp(w - wmax) for the kept
// ids and 0 for the others, scratch.blocks the sums of e per kBlock ids, kept_mass their sum.
struct RowPlan {
  bool greedy = false;
  int32_t token = 0;  // greedy only
  double kept_mass = 0.0;
  RowLse lse;  // of the raw logits at the temperature (1 when greedy), for the returned log-prob
};

RowPlan plan_row(Scratch& s, const float* logits, int64_t V, const SamplerParams& p, const int32_t* history,
                 int64_t n_history) {
  RowPlan plan;
  std::vector<float>& w = s.w;
  w.assign(logits, logits + V);
  // Repetition penalty, once per distinct token of the history.
  const bool penalised = p.repetition_penalty != 1.0f && n_history > 0;
  if (penalised) {
    s.dedup.assign(history, history + n_history);
    std::sort(s.dedup.begin(), s.dedup.end());
    s.dedup.erase(std::unique(s.dedup.begin(), s.dedup.end()), s.dedup.end());
    for (const int32_t i : s.dedup) w[i] = penalise(w[i], p.repetition_penalty);
  }
  if (is_greedy(p)) {
    plan.greedy = true;
    plan.token = static_cast<int32_t>(std::max_element(w.begin(), w.end()) - w.begin());  // lowest id on ties
    plan.lse = row_lse(logits, V, 1.0f, s.tmp);
    return plan;
  }
  // Shifted by the largest penalised logit before dividing, so that w <= 0 never overflows; the
  // shift leaves the distribution and the order unchanged.
  const float shift = row_max(w.data(), V);
  for (float& x : w) x = (x - shift) / p.temperature;
  const float wmax = 0.0f;
  std::vector<float>& e = s.e;
  e.resize(static_cast<size_t>(V));
  double total = 0.0;
  int64_t i = 0;
  for (; i + kLanes <= V; i += kLanes) {
    const v8f x = exp8(load(w.data() + i) - wmax);
    store(e.data() + i, x);
    total += hsum(x);
  }
  if (i < V) {
    const v8f x = lanes_below(V - i) ? exp8(load_partial(w.data() + i, V - i, wmax) - wmax) : splat(0.0f);
    store_partial(e.data() + i, x, V - i);
    total += hsum(x);
  }
  plan.lse = penalised ? row_lse(logits, V, p.temperature, s.tmp) : RowLse{shift, std::log(total)};

  // Filters: each narrows the kept prefix (top-k first, as a list of ids; top-p and min-p as a boundary).
  const float* wp = w.data();
  float* ep = e.data();
  const bool top_k = p.top_k > 0 && p.top_k < V;
  Cands cands{nullptr, V};
  double mass = total;
  if (top_k) {
    const Boundary top = select_prefix(
        cands, wp, [](int32_t) { return 1.0; }, p.top_k);
    s.cand.clear();
    mass = 0.0;
    walk_kept(cands, wp, top, [&](int32_t id, bool kept) {
      if (!kept) return;
      s.cand.push_back(id);
      mass += ep[id];
    });
    cands = Cands{s.cand.data(), static_cast<int64_t>(s.cand.size())};
  }
  Boundary bound;
  if (p.top_p < 1.0f)
    bound = select_prefix(
        cands, wp, [ep](int32_t id) { return static_cast<double>(ep[id]); }, static_cast<double>(p.top_p) * mass);
  if (p.min_p > 0.0f) {
    // p_i >= min_p * p_max  <=>  w_i >= wmax + log(min_p); the largest w is always kept.
    const uint32_t floor = order_key(wmax + std::log(p.min_p));
    if (floor > bound.key) bound = Boundary{floor};
  }
  // Zero e outside the kept set (exp8 never returns 0, so e > 0 marks a kept id).
  if (top_k) {
    s.tmp.clear();
    walk_kept(cands, wp, bound, [&](int32_t id, bool kept) { s.tmp.push_back(kept ? ep[id] : 0.0f); });
    std::fill(e.begin(), e.end(), 0.0f);
    for (int64_t j = 0; j < cands.n; ++j) ep[cands.ids[j]] = s.tmp[j];
  } else if (p.top_p < 1.0f || p.min_p > 0.0f) {
    walk_kept(cands, wp, bound, [&](int32_t id, bool kept) {
      if (!kept) ep[id] = 0.0f;
    });
  }
  const int64_t n_blocks = (V + kBlock - 1) / kBlock;
  s.blocks.resize(static_cast<size_t>(n_blocks));
  for (int64_t b = 0; b < n_blocks; ++b) {
    const int64_t j0 = b * kBlock, j1 = std::min(V, j0 + kBlock);
    v8f acc = {};
    int64_t j = j0;
    for (; j + kLanes <= j1; j += kLanes) acc += load(ep + j);
    float sum = hsum(acc);
    for (; j < j1; ++j) sum += ep[j];
    s.blocks[b] = sum;
    plan.kept_mass += sum;
  }
  return plan;
}

// Inverse CDF in id order: the first id whose cumulative mass reaches u * kept_mass. The block
// sums, added in order, end at exactly kept_mass > u * kept_mass, so a block is always found;
// inside it the walk takes the last kept id should rounding leave the target above its sum.
int32_t draw(const Scratch& s, const RowPlan& plan, double u, int64_t V) {
  const double target = u * plan.kept_mass;
  double cum = 0.0;
  int64_t b = 0;
  const int64_t n_blocks = static_cast<int64_t>(s.blocks.size());
  while (b + 1 < n_blocks && cum + s.blocks[b] < target) cum += s.blocks[b++];
  int32_t token = -1;
  for (int64_t j = b * kBlock; j < std::min(V, (b + 1) * kBlock); ++j) {
    if (s.e[j] == 0.0f) continue;
    token = static_cast<int32_t>(j);
    cum += s.e[j];
    if (target <= cum) break;
  }
  return token;
}

}  // namespace

void sampling_distribution(std::vector<int32_t>& ids, std::vector<double>& probs, const float* logits, int64_t vocab,
                           const SamplerParams& p, const int32_t* history, int64_t n_history) {
  check_sampler_params(p);
  const int64_t bad = first_non_finite(logits, vocab);
  MEDIX_CHECK(bad < 0, "sampling: logit ", bad, " is ", logits[bad < 0 ? 0 : bad],
              " (the model produced a non-finite logit)");
  Scratch& s = scratch;
  const RowPlan plan = plan_row(s, logits, vocab, p, history, n_history);
  ids.clear();
  probs.clear();
  if (plan.greedy) {
    ids.push_back(plan.token);
    probs.push_back(1.0);
    return;
  }
  for (int64_t i = 0; i < vocab; ++i)
    if (s.e[i] > 0.0f) {
      ids.push_back(static_cast<int32_t>(i));
      probs.push_back(s.e[i] / plan.kept_mass);
    }
}

void sample(int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b) {
  for (int64_t r = 0; r < b.rows; ++r) check_sampler_params(b.params[r]);
  // A non-finite logit (a broken model or overflow upstream) is refused rather than sampled: it
  // would give a NaN log-prob or a token chosen by NaN comparisons. Rows report it, then one throws.
  std::vector<int64_t> bad(static_cast<size_t>(b.rows), -1);
  parallel_for(b.rows, [&](int64_t r0, int64_t r1) {
    Scratch& s = scratch;
    for (int64_t r = r0; r < r1; ++r) {
      const SamplerParams& p = b.params[r];
      const float* row = logits + r * b.vocab;
      bad[r] = first_non_finite(row, b.vocab);
      if (bad[r] >= 0) {
        tokens[r] = 0;
        logprobs[r] = 0.0f;
        continue;
      }
      const int64_t h0 = b.history_offsets[r], h1 = b.history_offsets[r + 1];
      const RowPlan plan = plan_row(s, row, b.vocab, p, b.history + h0, h1 - h0);
      const int32_t token = plan.greedy
                                ? plan.token
                                : draw(s, plan, uniform01(sampler_stream_seed(p.seed, p.stream), p.counter), b.vocab);
      tokens[r] = token;
      logprobs[r] = static_cast<float>(plan.lse.logprob(row[token], plan.greedy ? 1.0f : p.temperature));
    }
  });
  for (int64_t r = 0; r < b.rows; ++r)
    MEDIX_CHECK(bad[r] < 0, "sampling: row ", r, " logit ", bad[r], " is ", logits[r * b.vocab + bad[r]],
                " (the model produced a non-finite logit)");
}

}  // namespace cpu
}  // namespace medix

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(Sample, cpu::sample);
}  // namespace medix
