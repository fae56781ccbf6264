// Fused output head + log-softmax + gather, forward and backward, and the naive reference that
// materialises the full logits (the baseline the fused form is measured against).
//
// Forward (ForwardWalk below): each thread fills its own vocab_chunk x token_chunk block of logits
// with the portable gemm's register kernel and reads it back for the online softmax statistics while
// it is still in that core's L2; a block that several threads share (gemm's own split) would come back
// from L3 or memory, as would the logits of OpenBLAS, which cannot hand a block over in cache, so the
// forward uses the portable kernel whichever gemm kernel is selected. Backward recomputes each block
// with gemm, turns it into d(loss)/d(logits) in place and pushes that through two gemms. The
// exponentials use a vectorised polynomial (std::exp is scalar and would cost as much as the gemm);
// the naive reference takes its statistics row by row with the same polynomial, so the two differ only
// in the order of the sums.
#include "logprob.h"

#include "logprob_columns.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../core/gemm.h"
#include "../core/gemm_micro.h"
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

  // Makes bm the max if it is larger, re-basing the sums: e' = e a and (z - m') = (z - m) + (m - m').
  void raise_max(float bm) {
    if (!(bm > m)) return;
    if (s > 0.0) {
      const double shift = static_cast<double>(m) - bm;
      const double a = std::exp(shift);
      w = a * (w + s * shift);
      s *= a;
    }
    m = bm;
  }
  void add(const float* z, int64_t n) {
    raise_max(row_max(z, n));
    float bs, bw;
    exp_sums(z, n, m, &bs, &bw);
    s += bs;
    w += bw;
  }
  // Folds in the statistics of other logits of the same token (o's sums are relative to o.m).
  void merge(const SoftmaxStats& o) {
    if (!(o.s > 0.0)) return;
    raise_max(o.m);
    const double shift = static_cast<double>(o.m) - m, a = std::exp(shift);
    s += a * o.s;
    w += a * (o.w + o.s * shift);
  }
  float lse() const { return static_cast<float>(m + std::log(s)); }
  float entropy() const { return static_cast<float>(std::log(s) - w / s); }
};

void check_args(const LogprobShape& s, const int32_t* targets, const char* fn) {
  MEDIX_CHECK(s.T >= 0 && s.hidden > 0 && s.vocab > 0, fn, ": bad shape T=", s.T, " hidden=", s.hidden,
              " vocab=", s.vocab);
  MEDIX_CHECK(s.temperature > 0 && std::isfinite(s.temperature), fn, ": temperature must be > 0, got ", s.temperature);
  MEDIX_CHECK(s.token_chunk >= 0 && s.vocab_chunk >= 0, fn, ": token_chunk and vocab_chunk must be >= 0 (0: default)");
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

// How the forward walks the logits. The vocabulary is cut into blocks of vocab_chunk entries and the
// blocks into segments of kSegmentBlocks; tokens into chunks of token_chunk. A unit of work is one
// token chunk x one segment: its blocks in order, each one gemm of the register kernel into a
// vocab_chunk x token_chunk buffer that stays in the worker's L2, then that buffer's column
// statistics. Each segment leaves per-token statistics that are merged in vocabulary order at the
// end, so threads share the work without the split reaching the bits. Logits are computed as
// head . hidden^T (the same products, the same fused multiply-add chain per logit as gemm's
// hidden . head^T): the head is then packed as gemm's A, a few rows at a time in the order it is read,
// and a token chunk of hidden once per unit as B.
struct ForwardWalk {
  static constexpr int64_t kSegmentBlocks = 64;
  const LogprobShape& s;
  const MicroKernel& kern = selected_micro_kernel();
  // The column statistics at the register kernel's vector width (logprob_columns.h).
  const LogprobColumns& columns = std::string(kern.name) == "avx512" && avx512_logprob_columns()
                                      ? *avx512_logprob_columns()
                                      : base_logprob_columns();
  int64_t vc, tc, blocks, segments, chunks, kslice, packed_cols;

  explicit ForwardWalk(const LogprobShape& shape) : s(shape) {
    vc = std::min(s.vocab_chunk > 0 ? s.vocab_chunk : kForwardVocabChunk, s.vocab);
    tc = std::min(s.token_chunk > 0 ? s.token_chunk : kForwardTokenChunk, s.T);
    blocks = (s.vocab + vc - 1) / vc;
    segments = (blocks + kSegmentBlocks - 1) / kSegmentBlocks;
    chunks = (s.T + tc - 1) / tc;
    kslice = gemm_k_slice(s.hidden);
    packed_cols = (tc + kern.nr - 1) / kern.nr * kern.nr;
  }
  // A worker's buffers: the block, the packed token chunk, four per-token rows and the running stats.
  size_t worker_bytes() const {
    return sizeof(float) * static_cast<size_t>(vc * tc + s.hidden * packed_cols + 4 * tc) +
           sizeof(SoftmaxStats) * static_cast<size_t>(tc);
  }
};

// The register kernel loads packed operands with aligned vector loads: 64-byte aligned storage.
std::unique_ptr<float, void (*)(void*)> aligned_floats(int64_t n) {
  const size_t bytes = (sizeof(float) * static_cast<size_t>(n) + 63) / 64 * 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  MEDIX_CHECK(p, "logprob_forward: cannot allocate ", bytes, " bytes");
  return {p, std::free};
}

class ForwardWorker {
 public:
  ForwardWorker(const ForwardWalk& walk, const float* hidden, const float* head, const int32_t* targets,
                bool with_entropy)
      : w_(walk),
        hidden_(hidden),
        head_(head),
        targets_(targets),
        with_entropy_(with_entropy),
        block_(new float[walk.vc * walk.tc]),
        packed_(aligned_floats(walk.s.hidden * walk.packed_cols)),
        scratch_(new float[4 * walk.tc]),
        stats_(walk.tc) {}

  // Token chunk c x segment g: this segment's statistics of each token into out[g * T + t], and the
  // target's logit where it falls in the segment.
  void run(int64_t c, int64_t g, SoftmaxStats* out, float* target_logit) {
    const LogprobShape& s = w_.s;
    const int64_t t0 = c * w_.tc, n = std::min(w_.tc, s.T - t0);
    if (c != packed_chunk_) pack_chunk(t0, n), packed_chunk_ = c;
    std::fill(stats_.begin(), stats_.begin() + n, SoftmaxStats{});
    float *colmax = scratch_.get(), *m = colmax + w_.tc, *bs = m + w_.tc, *bw = bs + w_.tc;
    const int64_t b1 = std::min(w_.blocks, (g + 1) * ForwardWalk::kSegmentBlocks);
    for (int64_t b = g * ForwardWalk::kSegmentBlocks; b < b1; ++b) {
      const int64_t v0 = b * w_.vc, rows = std::min(w_.vc, s.vocab - v0);
      const GemmOperand a{head_ + v0 * s.hidden, s.hidden, false};
      for (int64_t pc = 0; pc < s.hidden; pc += w_.kslice)
        w_.kern.rows(w_.kern, a, packed_.get() + pc * w_.packed_cols, 0, rows, 0, n, pc,
                     std::min(w_.kslice, s.hidden - pc), 1.0f / s.temperature, 0.0f, block_.get(), n);
      w_.columns.max(block_.get(), rows, n, n, colmax);
      for (int64_t j = 0; j < n; ++j) stats_[j].raise_max(colmax[j]), m[j] = stats_[j].m;
      w_.columns.exp_sums(block_.get(), rows, n, n, m, bs, with_entropy_ ? bw : nullptr);
      for (int64_t j = 0; j < n; ++j) {
        stats_[j].s += bs[j];
        if (with_entropy_) stats_[j].w += bw[j];
        const int64_t target = targets_[t0 + j];
        if (target >= v0 && target < v0 + rows) target_logit[t0 + j] = block_[(target - v0) * n + j];
      }
    }
    std::copy(stats_.begin(), stats_.begin() + n, out + g * s.T + t0);
  }

 private:
  // op(B) = hidden[t0 : t0+n]^T, one K slice after the other, in the register kernel's panels.
  void pack_chunk(int64_t t0, int64_t n) {
    const GemmOperand b{hidden_ + t0 * w_.s.hidden, w_.s.hidden, true};
    for (int64_t pc = 0; pc < w_.s.hidden; pc += w_.kslice)
      w_.kern.pack_b(b, pc, std::min(w_.kslice, w_.s.hidden - pc), 0, n, packed_.get() + pc * w_.packed_cols);
  }

  const ForwardWalk& w_;
  const float *hidden_, *head_;
  const int32_t* targets_;
  bool with_entropy_;
  std::unique_ptr<float[]> block_;
  std::unique_ptr<float, void (*)(void*)> packed_;
  std::unique_ptr<float[]> scratch_;
  std::vector<SoftmaxStats> stats_;
  int64_t packed_chunk_ = -1;
};

}  // namespace

size_t logprob_forward(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                       const int32_t* targets, const LogprobShape& s) {
  check_args(s, targets, "logprob_forward");
  if (s.T == 0) return 0;
  const ForwardWalk walk(s);
  std::vector<SoftmaxStats> segment_stats(walk.segments * s.T);
  std::vector<float> target_logit(s.T, 0.0f);
  const int64_t units = walk.chunks * walk.segments;
  const int64_t workers = std::min<int64_t>(units, num_threads());
  parallel_for(units, [&](int64_t u0, int64_t u1) {
    ForwardWorker worker(walk, hidden, head, targets, entropy != nullptr);
    for (int64_t u = u0; u < u1; ++u)
      worker.run(u / walk.segments, u % walk.segments, segment_stats.data(), target_logit.data());
  });
  for (int64_t t = 0; t < s.T; ++t) {
    SoftmaxStats st;  // the segments in vocabulary order: the same bits whatever the thread count
    for (int64_t g = 0; g < walk.segments; ++g) st.merge(segment_stats[g * s.T + t]);
    lse[t] = st.lse();
    logp[t] = targets[t] < 0 ? 0.0f : target_logit[t] - lse[t];
    if (entropy) entropy[t] = st.entropy();
  }
  return workers * walk.worker_bytes() + (sizeof(SoftmaxStats) * walk.segments + sizeof(float)) * s.T;
}

size_t logprob_backward(float* dhidden, float* dhead, const float* dlogp, const float* dentropy, const float* hidden,
                        const float* head, const int32_t* targets, const float* lse, const float* entropy,
                        const LogprobShape& s) {
  check_args(s, targets, "logprob_backward");
  if (s.T == 0) return 0;
  const bool with_entropy = dentropy && entropy;
  const int64_t tc = std::min(s.token_chunk > 0 ? s.token_chunk : kBackwardTokenChunk, s.T);
  const int64_t vc = std::min(s.vocab_chunk > 0 ? s.vocab_chunk : kBackwardVocabChunk, s.vocab);
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
