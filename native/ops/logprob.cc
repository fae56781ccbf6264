// Fused output head + log-softmax + gather, forward and backward, and the naive reference that
// materialises the full logits (the baseline the fused form is measured against).
//
// The fused form walks the [T, V] logits in blocks of token_chunk x vocab_chunk: one gemm fills a
// block, then every token row of it updates that token's online softmax statistics. Backward
// recomputes each block, turns it into d(loss)/d(logits) in place and pushes that through two gemms.
// The exponentials use a vectorised polynomial (std::exp is scalar and would cost as much as the
// gemm); the naive reference uses the same row statistics, so the two differ only in blocking.
#include "logprob.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <vector>

#include "../core/error.h"
#include "../core/gemm.h"
#include "../core/simd.h"
#include "../core/threads.h"

namespace medix::cpu {
namespace {

using namespace simd;

// Sums over one row segment of e_j = exp(z_j - m): s = sum e_j and w = sum e_j (z_j - m). Two
// accumulator pairs, so consecutive vector adds do not wait on each other.
void exp_sums(const float* z, int64_t n, float m, float* s_out, float* w_out) {
  v8f s0 = {}, s1 = {}, w0 = {}, w1 = {};
  int64_t j = 0;
  for (; j + 2 * kLanes <= n; j += 2 * kLanes) {
    const v8f d0 = load(z + j) - m, d1 = load(z + j + kLanes) - m;
    const v8f e0 = exp8(d0), e1 = exp8(d1);
    s0 += e0;
    s1 += e1;
    w0 += e0 * d0;
    w1 += e1 * d1;
  }
  for (; j < n; j += kLanes) {
    const int64_t k = std::min(kLanes, n - j);
    const v8f d = load_partial(z + j, k, m) - m;
    const v8f e = lanes_below(k) ? exp8(d) : splat(0.0f);  // lanes past n count 0
    s0 += e;
    w0 += e * d;
  }
  *s_out = hsum(s0 + s1);
  *w_out = hsum(w0 + w1);
}

// Online softmax statistics of one token's logits, fed one vocabulary block at a time:
//   m = running max, s = sum exp(z - m), w = sum exp(z - m) (z - m).
// Then lse = m + log s and entropy = lse - sum p z = log s - w / s. Keeping w relative to m avoids
// the cancellation of lse - E[z] when the logits are large.
struct SoftmaxStats {
  float m = -INFINITY;
  double s = 0.0, w = 0.0;

  void add(const float* z, int64_t n) {
    const float bm = row_max(z, n);
    if (bm > m) {
      if (s > 0.0) {
        // Re-base the sums on the new max: e' = e a and (z - m') = (z - m) + (m - m').
        const double shift = static_cast<double>(m) - bm;
        const double a = std::exp(shift);
        w = a * (w + s * shift);
        s *= a;
      }
      m = bm;
    }
    float bs, bw;
    exp_sums(z, n, m, &bs, &bw);
    s += bs;
    w += bw;
  }
  float lse() const { return static_cast<float>(m + std::log(s)); }
  float entropy() const { return static_cast<float>(std::log(s) - w / s); }
};

void check_args(const LogprobShape& s, const int32_t* targets, const char* fn) {
  MEDIX_CHECK(s.T >= 0 && s.hidden > 0 && s.vocab > 0, fn, ": bad shape T=", s.T, " hidden=", s.hidden,
              " vocab=", s.vocab);
  MEDIX_CHECK(s.temperature > 0 && std::isfinite(s.temperature), fn, ": temperature must be > 0, got ", s.temperature);
  MEDIX_CHECK(s.token_chunk > 0 && s.vocab_chunk > 0, fn, ": token_chunk and vocab_chunk must be > 0");
  for (int64_t t = 0; t < s.T; ++t)
    MEDIX_CHECK(targets[t] >= -1 && targets[t] < s.vocab, fn, ": targets[", t, "] = ", targets[t],
                " is out of range [-1, ", s.vocab, ")");
}

// One logits block: z[r, c] = hidden[t0 + r] . head[v0 + c] / temperature, ldz = cols.
void logits_block(float* z, const float* hidden, const float* head, int64_t t0, int64_t rows, int64_t v0, int64_t cols,
                  const LogprobShape& s) {
  gemm(false, true, rows, cols, s.hidden, 1.0f / s.temperature, hidden + t0 * s.hidden, s.hidden, head + v0 * s.hidden,
       s.hidden, 0.0f, z, cols);
}

// Rows of a block per parallel_for chunk: enough to amortise the dispatch.
int64_t rows_per_task(int64_t cols) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(1, cols)); }

// The block buffer and per-token statistics one call holds at its peak.
size_t block_bytes(int64_t rows, int64_t cols) {
  return sizeof(float) * static_cast<size_t>(rows * cols) + sizeof(SoftmaxStats) * static_cast<size_t>(rows);
}

// d(loss)/d(z) for one token row of a block, in place, with loss = g logp + h entropy:
//   p_j = exp(z_j - lse),  dz_j = g (1[j = target] - p_j) - h p_j (z_j - lse + entropy)
// (dH/dz_j = -p_j (log p_j + H), log p_j = z_j - lse). target_col is the target's column in this
// block or -1.
void dlogits_row(float* z, int64_t n, float lse, float g, float h, float ent, int64_t target_col) {
  const float c = ent - lse;  // z - lse + entropy = z + c
  int64_t j = 0;
  for (; j < n; j += kLanes) {
    const int64_t k = std::min(kLanes, n - j);
    const v8f x = k == kLanes ? load(z + j) : load_partial(z + j, k, lse);
    const v8f p = exp8(x - lse);
    const v8f d = -(g * p) - h * (p * (x + c));
    if (k == kLanes)
      store(z + j, d);
    else
      store_partial(z + j, d, k);
  }
  if (target_col >= 0) z[target_col] += g;
}

}  // namespace

size_t logprob_forward(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                       const int32_t* targets, const LogprobShape& s) {
  check_args(s, targets, "logprob_forward");
  if (s.T == 0) return 0;
  const int64_t tc = std::min(s.token_chunk, s.T), vc = std::min(s.vocab_chunk, s.vocab);
  std::unique_ptr<float[]> block(new float[tc * vc]);
  std::vector<SoftmaxStats> stats(tc);
  std::vector<float> target_logit(tc);
  for (int64_t t0 = 0; t0 < s.T; t0 += tc) {
    const int64_t rows = std::min(tc, s.T - t0);
    std::fill(stats.begin(), stats.end(), SoftmaxStats{});
    for (int64_t v0 = 0; v0 < s.vocab; v0 += vc) {
      const int64_t cols = std::min(vc, s.vocab - v0);
      logits_block(block.get(), hidden, head, t0, rows, v0, cols, s);
      parallel_for(
          rows,
          [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
              const float* z = block.get() + r * cols;
              stats[r].add(z, cols);
              const int64_t target = targets[t0 + r];
              if (target >= v0 && target < v0 + cols) target_logit[r] = z[target - v0];
            }
          },
          rows_per_task(cols));
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t t = t0 + r;
      lse[t] = stats[r].lse();
      logp[t] = targets[t] < 0 ? 0.0f : target_logit[r] - lse[t];
      if (entropy) entropy[t] = stats[r].entropy();
    }
  }
  return block_bytes(tc, vc) + sizeof(float) * static_cast<size_t>(tc);
}

size_t logprob_backward(float* dhidden, float* dhead, const float* dlogp, const float* dentropy, const float* hidden,
                        const float* head, const int32_t* targets, const float* lse, const float* entropy,
                        const LogprobShape& s) {
  check_args(s, targets, "logprob_backward");
  if (s.T == 0) return 0;
  const bool with_entropy = dentropy && entropy;
  const int64_t tc = std::min(s.token_chunk, s.T), vc = std::min(s.vocab_chunk, s.vocab);
  const float inv_temp = 1.0f / s.temperature;
  std::unique_ptr<float[]> block(new float[tc * vc]);
  for (int64_t t0 = 0; t0 < s.T; t0 += tc) {
    const int64_t rows = std::min(tc, s.T - t0);
    for (int64_t v0 = 0; v0 < s.vocab; v0 += vc) {
      const int64_t cols = std::min(vc, s.vocab - v0);
      float* dz = block.get();
      logits_block(dz, hidden, head, t0, rows, v0, cols, s);
      parallel_for(
          rows,
          [&](int64_t r0, int64_t r1) {
            for (int64_t r = r0; r < r1; ++r) {
              const int64_t t = t0 + r;
              const int64_t target = targets[t];
              // A token without target has logp = 0 by definition: no gradient through it.
              const float g = target < 0 ? 0.0f : dlogp[t];
              const float h = with_entropy ? dentropy[t] : 0.0f;
              const float ent = with_entropy ? entropy[t] : 0.0f;
              const int64_t col = target >= v0 && target < v0 + cols ? target - v0 : -1;
              dlogits_row(dz + r * cols, cols, lse[t], g, h, ent, col);
            }
          },
          rows_per_task(cols));
      // z = x head^T / temperature, so dx += dz head / temperature and dhead += dz^T x / temperature.
      gemm(false, false, rows, s.hidden, cols, inv_temp, dz, cols, head + v0 * s.hidden, s.hidden, 1.0f,
           dhidden + t0 * s.hidden, s.hidden);
      gemm(true, false, cols, s.hidden, rows, inv_temp, dz, cols, hidden + t0 * s.hidden, s.hidden, 1.0f,
           dhead + v0 * s.hidden, s.hidden);
    }
  }
  return sizeof(float) * static_cast<size_t>(tc * vc);
}

size_t logprob_forward_naive(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                             const int32_t* targets, const LogprobShape& s) {
  check_args(s, targets, "logprob_forward_naive");
  if (s.T == 0) return 0;
  // All T x V logits at once (not zeroed: gemm with beta = 0 only writes them), in the kept buffer.
  static std::mutex mu;
  static std::vector<float> kept;
  std::lock_guard<std::mutex> lock(mu);
  if (kept.size() < static_cast<size_t>(s.T * s.vocab)) {
    kept = std::vector<float>();  // free the old one first: peak memory is the new size, not both
    kept.resize(s.T * s.vocab);
  }
  float* const logits = kept.data();
  logits_block(logits, hidden, head, 0, s.T, 0, s.vocab, s);
  parallel_for(s.T, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* z = logits + t * s.vocab;
      SoftmaxStats st;  // log-softmax of the whole row: one block
      st.add(z, s.vocab);
      lse[t] = st.lse();
      logp[t] = targets[t] < 0 ? 0.0f : z[targets[t]] - lse[t];
      if (entropy) entropy[t] = st.entropy();
    }
  });
  return sizeof(float) * static_cast<size_t>(s.T * s.vocab);
}

}  // namespace medix::cpu
