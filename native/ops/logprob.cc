// Fused output head + log-softmax + gather, forward and backward, and the naive reference that
// materialises the full logits (the baseline the fused form is measured against).
//
// Forward (ForwardWalk below): each thread fills its own vocab_chunk x token_chunk block of logits
// with the portable gemm's register kernel and reads it back for the online softmax statistics while
// it is still in that core's L2; a block that several threads share (gemm's own split) would come back
// from L3 or memory, as would the logits of OpenBLAS, which cannot hand a block over in cache, so the
// forward uses the portable kernel whichever gemm kernel is selected. Backward (BackwardWalk) recomputes
// each block the same way, turns it into d(loss)/d(logits) in place and pushes that through two more
// register-kernel gemms while it is still in L2. The exponentials use a vectorised polynomial (std::exp
// is scalar and would cost as much as the gemm); the naive reference takes its statistics row by row
// with the same polynomial, so the two differ only in the order of the sums.
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
#include "../core/op_table_dsl.h"

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

// The column functions at the register kernel's vector width (logprob_columns.h).
const LogprobColumns& columns_for(const MicroKernel& kern) {
  const LogprobColumns* wide = avx512_logprob_columns();
  return std::string(kern.name) == "avx512" && wide ? *wide : base_logprob_columns();
}

using AlignedFloats = std::unique_ptr<float, void (*)(void*)>;

// The register kernel loads packed operands with aligned vector loads: 64-byte aligned storage.
AlignedFloats aligned_floats(int64_t n) {
  const size_t bytes = (sizeof(float) * static_cast<size_t>(n) + 63) / 64 * 64;
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  MEDIX_CHECK(p, "logprob: cannot allocate ", bytes, " bytes");
  return {p, std::free};
}

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// op(B) = hidden[t0 : t0+n]^T for the logits product, one K slice of kslice after the other, each in
// the register kernel's panels of `cols` (n rounded up to its NR) columns.
void pack_tokens(const MicroKernel& kern, const float* hidden, int64_t H, int64_t t0, int64_t n, int64_t kslice,
                 int64_t cols, float* out) {
  const GemmOperand b{hidden + t0 * H, H, true};
  for (int64_t pc = 0; pc < H; pc += kslice) kern.pack_b(b, pc, std::min(kslice, H - pc), 0, n, out + pc * cols);
}

// z[rows, n] = head_block . hidden^T * scale from pack_tokens' output: one fused multiply-add chain per
// logit over the K slices in order, so forward and backward compute the same bits.
void logits_block(const MicroKernel& kern, const GemmOperand& head_block, const float* packed, int64_t rows, int64_t n,
                  int64_t H, int64_t kslice, int64_t cols, float scale, float* z) {
  for (int64_t pc = 0; pc < H; pc += kslice)
    kern.rows(kern, head_block, packed + pc * cols, 0, rows, 0, n, pc, std::min(kslice, H - pc), scale, 0.0f, z, n);
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
  const LogprobColumns& columns = columns_for(kern);
  int64_t vc, tc, blocks, segments, chunks, kslice, packed_cols;

  explicit ForwardWalk(const LogprobShape& shape) : s(shape) {
    vc = std::min(s.vocab_chunk > 0 ? s.vocab_chunk : kForwardVocabChunk, s.vocab);
    tc = std::min(s.token_chunk > 0 ? s.token_chunk : kForwardTokenChunk, s.T);
    blocks = (s.vocab + vc - 1) / vc;
    segments = (blocks + kSegmentBlocks - 1) / kSegmentBlocks;
    chunks = (s.T + tc - 1) / tc;
    kslice = gemm_k_slice(s.hidden);
    packed_cols = round_up(tc, kern.nr);
  }
  // A worker's buffers: the block, the packed token chunk, four per-token rows and the running stats.
  size_t worker_bytes() const {
    return sizeof(float) * static_cast<size_t>(vc * tc + s.hidden * packed_cols + 4 * tc) +
           sizeof(SoftmaxStats) * static_cast<size_t>(tc);
  }
};

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
    if (c != packed_chunk_) {
      pack_tokens(w_.kern, hidden_, s.hidden, t0, n, w_.kslice, w_.packed_cols, packed_.get());
      packed_chunk_ = c;
    }
    std::fill(stats_.begin(), stats_.begin() + n, SoftmaxStats{});
    float *colmax = scratch_.get(), *m = colmax + w_.tc, *bs = m + w_.tc, *bw = bs + w_.tc;
    const int64_t b1 = std::min(w_.blocks, (g + 1) * ForwardWalk::kSegmentBlocks);
    for (int64_t b = g * ForwardWalk::kSegmentBlocks; b < b1; ++b) {
      const int64_t v0 = b * w_.vc, rows = std::min(w_.vc, s.vocab - v0);
      const GemmOperand a{head_ + v0 * s.hidden, s.hidden, false};
      logits_block(w_.kern, a, packed_.get(), rows, n, s.hidden, w_.kslice, w_.packed_cols, 1.0f / s.temperature,
                   block_.get());
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
  const ForwardWalk& w_;
  const float *hidden_, *head_;
  const int32_t* targets_;
  bool with_entropy_;
  std::unique_ptr<float[]> block_;
  AlignedFloats packed_;
  std::unique_ptr<float[]> scratch_;
  std::vector<SoftmaxStats> stats_;
  int64_t packed_chunk_ = -1;
};

// How the backward walks the logits: the forward's blocks (one register-kernel gemm into a
// vocab_chunk x token_chunk block in the thread's L2, head . hidden^T) turned into d(loss)/d(logits) in
// place, then pushed through two more gemms of the register kernel while the block is still there:
//   dhead[block rows] += dz hidden[chunk] / temperature       (the block's rows belong to this thread)
//   dhidden[chunk]    += dz^T head[block rows] / temperature  (into the thread's own buffer)
// A thread takes a range of vocabulary blocks and walks every token chunk of each; hidden is packed
// once for both of its uses and shared. dhead's bits depend only on the chunk sizes; dhidden's also
// on how the blocks are split between threads (as OpenBLAS's gemm results depend on the thread count).
struct BackwardWalk {
  const LogprobShape& s;
  const MicroKernel& kern = selected_micro_kernel();
  const LogprobColumns& columns = columns_for(kern);
  int64_t vc, tc, blocks, chunks, kslice, chunk_cols, hidden_cols;
  float inv_temp;
  const float* lse;
  std::vector<float> g, h, c;  // per token: d(loss)/d(logp), d(loss)/d(entropy), entropy - lse
  // hidden packed as the logits gemm's B (per chunk: H x chunk_cols) and as dhead's (per chunk: tc x hidden_cols).
  AlignedFloats hidden_t{nullptr, std::free}, hidden_n{nullptr, std::free};

  BackwardWalk(const LogprobShape& shape, const float* hidden, const int32_t* targets, const float* dlogp,
               const float* dentropy, const float* lse_in, const float* entropy)
      : s(shape), lse(lse_in), g(shape.T), h(shape.T), c(shape.T) {
    vc = std::min(s.vocab_chunk > 0 ? s.vocab_chunk : kBackwardVocabChunk, s.vocab);
    tc = std::min(s.token_chunk > 0 ? s.token_chunk : kBackwardTokenChunk, s.T);
    blocks = (s.vocab + vc - 1) / vc;
    chunks = (s.T + tc - 1) / tc;
    kslice = gemm_k_slice(s.hidden);
    chunk_cols = round_up(tc, kern.nr);
    hidden_cols = round_up(s.hidden, kern.nr);
    inv_temp = 1.0f / s.temperature;
    for (int64_t t = 0; t < s.T; ++t) {
      // A token without target has logp = 0 by definition: no gradient through it.
      g[t] = targets[t] < 0 ? 0.0f : dlogp[t];
      h[t] = dentropy ? dentropy[t] : 0.0f;
      c[t] = (dentropy ? entropy[t] : 0.0f) - lse[t];
    }
    hidden_t = aligned_floats(chunks * s.hidden * chunk_cols);
    hidden_n = aligned_floats(chunks * tc * hidden_cols);
    parallel_for(chunks, [&](int64_t c0, int64_t c1) {
      for (int64_t ci = c0; ci < c1; ++ci) {
        const int64_t t0 = ci * tc, n = std::min(tc, s.T - t0);
        pack_tokens(kern, hidden, s.hidden, t0, n, kslice, chunk_cols, chunk_t(ci));
        kern.pack_b({hidden, s.hidden, false}, t0, n, 0, s.hidden, chunk_n(ci));
      }
    });
  }
  float* chunk_t(int64_t ci) const { return hidden_t.get() + ci * s.hidden * chunk_cols; }
  float* chunk_n(int64_t ci) const { return hidden_n.get() + ci * tc * hidden_cols; }
  size_t shared_bytes() const {
    return sizeof(float) * static_cast<size_t>(chunks * (s.hidden * chunk_cols + tc * hidden_cols) + 3 * s.T);
  }
  // A worker's block, its packed head rows and its dhidden buffer.
  size_t worker_bytes() const {
    return sizeof(float) * static_cast<size_t>(vc * tc + vc * hidden_cols + s.T * s.hidden);
  }
};

class BackwardWorker {
 public:
  BackwardWorker(const BackwardWalk& walk, const float* head, const int32_t* targets, float* dhead, float* dhidden)
      : w_(walk),
        head_(head),
        targets_(targets),
        dhead_(dhead),
        dhidden_(dhidden),
        block_(new float[walk.vc * walk.tc]),
        head_rows_(aligned_floats(walk.vc * walk.hidden_cols)) {}

  void run(int64_t b) {
    const LogprobShape& s = w_.s;
    const MicroKernel& k = w_.kern;
    const int64_t v0 = b * w_.vc, rows = std::min(w_.vc, s.vocab - v0);
    const GemmOperand head_block{head_ + v0 * s.hidden, s.hidden, false};
    k.pack_b(head_block, 0, rows, 0, s.hidden, head_rows_.get());  // B of dhidden's gemm: K = the block's rows
    float* dz = block_.get();
    for (int64_t ci = 0; ci < w_.chunks; ++ci) {
      const int64_t t0 = ci * w_.tc, n = std::min(w_.tc, s.T - t0);
      logits_block(k, head_block, w_.chunk_t(ci), rows, n, s.hidden, w_.kslice, w_.chunk_cols, w_.inv_temp, dz);
      w_.columns.dlogits(dz, rows, n, n, w_.lse + t0, w_.g.data() + t0, w_.h.data() + t0, w_.c.data() + t0);
      for (int64_t j = 0; j < n; ++j) {
        const int64_t target = targets_[t0 + j];
        if (target >= v0 && target < v0 + rows) dz[(target - v0) * n + j] += w_.g[t0 + j];
      }
      // z = head . x^T / temperature: dhead += dz x / temperature, dx += dz^T head / temperature.
      k.rows(k, {dz, n, false}, w_.chunk_n(ci), 0, rows, 0, s.hidden, 0, n, w_.inv_temp, 1.0f, dhead_ + v0 * s.hidden,
             s.hidden);
      k.rows(k, {dz, n, true}, head_rows_.get(), 0, n, 0, s.hidden, 0, rows, w_.inv_temp, 1.0f,
             dhidden_ + t0 * s.hidden, s.hidden);
    }
  }

 private:
  const BackwardWalk& w_;
  const float* head_;
  const int32_t* targets_;
  float *dhead_, *dhidden_;
  std::unique_ptr<float[]> block_;
  AlignedFloats head_rows_;
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
  const BackwardWalk walk(s, hidden, targets, dlogp, dentropy && entropy ? dentropy : nullptr, lse, entropy);
  // Each range of blocks (one per thread) sums its dhidden in a buffer of its own; the buffers are
  // added in block order.
  std::mutex mu;
  std::vector<std::pair<int64_t, AlignedFloats>> partials;
  parallel_for(walk.blocks, [&](int64_t b0, int64_t b1) {
    AlignedFloats partial = aligned_floats(s.T * s.hidden);
    std::fill(partial.get(), partial.get() + s.T * s.hidden, 0.0f);
    BackwardWorker worker(walk, head, targets, dhead, partial.get());
    for (int64_t b = b0; b < b1; ++b) worker.run(b);
    std::lock_guard<std::mutex> lock(mu);
    partials.emplace_back(b0, std::move(partial));
  });
  std::sort(partials.begin(), partials.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  parallel_for(
      s.T,
      [&](int64_t t0, int64_t t1) {
        for (const auto& part : partials)
          for (int64_t i = t0 * s.hidden; i < t1 * s.hidden; ++i) dhidden[i] += part.second.get()[i];
      },
      64);
  return walk.shared_bytes() + partials.size() * walk.worker_bytes();
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
  // logits[t, v] = hidden[t] . head[v] / temperature
  gemm(false, true, s.T, s.vocab, s.hidden, 1.0f / s.temperature, hidden, s.hidden, head, s.hidden, 0.0f, logits,
       s.vocab);
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

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(LogprobForward, cpu::logprob_forward);
MEDIX_CPU_OP(LogprobBackward, cpu::logprob_backward);
MEDIX_CPU_REFERENCE_OP(LogprobForwardNaive, cpu::logprob_forward_naive);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
// Fused log-probs and entropy of the LM head. T defaults to the targets' length.
namespace medix::op_decl {
namespace {

std::vector<AttrSpec> logprob_attrs() {
  // tokenChunk and vocabChunk: 0 when not given, the direction's default (logprob.h).
  return {integer_or("T", 0, kMaxTokens, -1),
          integer("hidden", 1, kMaxDim),
          integer("vocab", 1, kMaxTokens),
          number_or("temperature", 1.0),
          integer_or("tokenChunk", 1, kMaxTokens, 0),
          integer_or("vocabChunk", 1, kMaxTokens, 0),
          boolean_or("entropy", false)};
}

void logprob_shape(Attrs& a, const Lengths& lengths) {
  const int64_t n = lengths.at("targets");
  if (a.i("T") < 0) a.num["T"] = static_cast<double>(n);
  MEDIX_CHECK(a.i("T") == n, "targets must have length T = ", a.i("T"), ", got ", n);
  MEDIX_CHECK(a.f("temperature") > 0, "option 'temperature' must be > 0, got ", a.f("temperature"));
}

void logprob_backward_shape(Attrs& a, const Lengths& lengths) {
  logprob_shape(a, lengths);
  MEDIX_CHECK(lengths.count("dentropy") == lengths.count("entropy"),
              "dentropy and entropy go together (give both or neither)");
}

LogprobShape logprob(const Attrs& a) {
  LogprobShape s;
  s.T = a.i("T");
  s.hidden = a.i("hidden");
  s.vocab = a.i("vocab");
  s.temperature = static_cast<float>(a.f("temperature"));
  s.token_chunk = a.i("tokenChunk");
  s.vocab_chunk = a.i("vocabChunk");
  return s;
}

std::vector<ArgSpec> logprob_forward_args() {
  return {in("hidden", "T*hidden"), in("head", "vocab*hidden"),    ids("targets", "", -1, "vocab"), out("logp", "T"),
          out("lse", "T"),          out("entropy", "T", "entropy")};
}

OpDef logprob_op() {
  OpDef d = family("logprob", op_ids<LogprobForward, LogprobBackward>());
  d.forward = {"logprobForward", logprob_forward_args(), logprob_attrs(), logprob_shape,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 return static_cast<double>(be.run<LogprobForward>(
                     t.f("logp"), t.f("entropy"), t.f("lse"), t.f("hidden"), t.f("head"), t.i("targets"), logprob(a)));
               }};
  d.has_backward = true;
  d.backward = {"logprobBackward",
                {in("dlogp", "T"), in_opt("dentropy", "T"), in("hidden", "T*hidden"), in("head", "vocab*hidden"),
                 ids("targets", "", -1, "vocab"), in("lse", "T"), in_opt("entropy", "T"), out("dhidden", "T*hidden"),
                 out("dhead", "vocab*hidden")},
                logprob_attrs(),
                logprob_backward_shape,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  return static_cast<double>(be.run<LogprobBackward>(
                      t.f("dhidden"), t.f("dhead"), t.f("dlogp"), t.f("dentropy"), t.f("hidden"), t.f("head"),
                      t.i("targets"), t.f("lse"), t.f("entropy"), logprob(a)));
                }};
  return d;
}

// The unfused head (whole logits matrix): the reference the fused op is measured against. Only the CPU
// registers its backend op, so only the CPU supports the entry.
OpDef logprob_naive() {
  OpDef d = family("logprob_naive", op_ids<LogprobForwardNaive>());
  d.forward = {"logprobNaive", logprob_forward_args(), logprob_attrs(), logprob_shape,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 return static_cast<double>(be.run<LogprobForwardNaive>(
                     t.f("logp"), t.f("entropy"), t.f("lse"), t.f("hidden"), t.f("head"), t.i("targets"), logprob(a)));
               }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(logprob_op);
MEDIX_OP_TABLE_ENTRY(logprob_naive);

}  // namespace medix::op_decl
