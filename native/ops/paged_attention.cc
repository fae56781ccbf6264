// Paged attention on the CPU. A unit of work is a run of up to kTileRows / group consecutive tokens
// of one sequence and one kv head: the rows are those tokens' query heads sharing the kv head, and
// every key and value the unit needs is read once per unit (a prefill's tokens share their keys).
//
// Each score is the dot product of a query row and a key in eight lane sums over head_dim (lane l
// sums dims l, l + 8, ...), the lanes then added in order, then the head_dim % 8 tail; each output
// is sum_j p_j v_j in key order. A row's arithmetic never depends on the other rows of its unit, so a
// request's tokens are the same bits alone or batched. For speed the scores of two rows and four
// keys come from one register tile, their 32 lane sums finished by a transpose (so the lanes are
// still added in order), and a row's weighted sum of values keeps 64 dims in registers across keys.
// One template serves the f32 and the bf16 cache: a bf16 key or value widens to f32 as it is loaded.
#include "paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/bf16.h"
#include "../core/simd.h"
#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {

void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                    int64_t kv_dim) {
  for (int64_t t = 0; t < T; ++t) {
    std::memcpy(k_cache + static_cast<int64_t>(slots[t]) * kv_dim, k + t * kv_dim, sizeof(float) * kv_dim);
    std::memcpy(v_cache + static_cast<int64_t>(slots[t]) * kv_dim, v + t * kv_dim, sizeof(float) * kv_dim);
  }
}

void kv_cache_write_bf16(uint16_t* k_cache, uint16_t* v_cache, const float* k, const float* v, const int32_t* slots,
                         int64_t T, int64_t kv_dim) {
  for (int64_t t = 0; t < T; ++t) {
    f32_to_bf16(k_cache + static_cast<int64_t>(slots[t]) * kv_dim, k + t * kv_dim, kv_dim);
    f32_to_bf16(v_cache + static_cast<int64_t>(slots[t]) * kv_dim, v + t * kv_dim, kv_dim);
  }
}

namespace {

using namespace simd;

// Query rows per unit: enough to read a sequence's keys once for many rows, few enough that the
// unit's scores (rows x longest context floats) stay small.
constexpr int64_t kTileRows = 16;

inline float widen(float x) { return x; }
inline float widen(uint16_t x) { return bf16_to_f32_scalar(x); }

// Lane i of the result is the in-order sum 0 + a_i[0] + a_i[1] + ... + a_i[7] (simd::hsum of a_i),
// for eight vectors at once: an 8 x 8 transpose, then seven vector adds.
inline v8f lane_sums(v8f a0, v8f a1, v8f a2, v8f a3, v8f a4, v8f a5, v8f a6, v8f a7) {
  const v8f t0 = __builtin_shufflevector(a0, a1, 0, 8, 1, 9, 4, 12, 5, 13);
  const v8f t1 = __builtin_shufflevector(a0, a1, 2, 10, 3, 11, 6, 14, 7, 15);
  const v8f t2 = __builtin_shufflevector(a2, a3, 0, 8, 1, 9, 4, 12, 5, 13);
  const v8f t3 = __builtin_shufflevector(a2, a3, 2, 10, 3, 11, 6, 14, 7, 15);
  const v8f t4 = __builtin_shufflevector(a4, a5, 0, 8, 1, 9, 4, 12, 5, 13);
  const v8f t5 = __builtin_shufflevector(a4, a5, 2, 10, 3, 11, 6, 14, 7, 15);
  const v8f t6 = __builtin_shufflevector(a6, a7, 0, 8, 1, 9, 4, 12, 5, 13);
  const v8f t7 = __builtin_shufflevector(a6, a7, 2, 10, 3, 11, 6, 14, 7, 15);
  // u_k holds lanes k and k + 4 of a0..a3 (u0..u3) or a4..a7 (u4..u7).
  const v8f u0 = __builtin_shufflevector(t0, t2, 0, 1, 8, 9, 4, 5, 12, 13);
  const v8f u1 = __builtin_shufflevector(t0, t2, 2, 3, 10, 11, 6, 7, 14, 15);
  const v8f u2 = __builtin_shufflevector(t1, t3, 0, 1, 8, 9, 4, 5, 12, 13);
  const v8f u3 = __builtin_shufflevector(t1, t3, 2, 3, 10, 11, 6, 7, 14, 15);
  const v8f u4 = __builtin_shufflevector(t4, t6, 0, 1, 8, 9, 4, 5, 12, 13);
  const v8f u5 = __builtin_shufflevector(t4, t6, 2, 3, 10, 11, 6, 7, 14, 15);
  const v8f u6 = __builtin_shufflevector(t5, t7, 0, 1, 8, 9, 4, 5, 12, 13);
  const v8f u7 = __builtin_shufflevector(t5, t7, 2, 3, 10, 11, 6, 7, 14, 15);
  // c_l = lane l of a0..a7.
  const v8f c0 = __builtin_shufflevector(u0, u4, 0, 1, 2, 3, 8, 9, 10, 11);
  const v8f c1 = __builtin_shufflevector(u1, u5, 0, 1, 2, 3, 8, 9, 10, 11);
  const v8f c2 = __builtin_shufflevector(u2, u6, 0, 1, 2, 3, 8, 9, 10, 11);
  const v8f c3 = __builtin_shufflevector(u3, u7, 0, 1, 2, 3, 8, 9, 10, 11);
  const v8f c4 = __builtin_shufflevector(u0, u4, 4, 5, 6, 7, 12, 13, 14, 15);
  const v8f c5 = __builtin_shufflevector(u1, u5, 4, 5, 6, 7, 12, 13, 14, 15);
  const v8f c6 = __builtin_shufflevector(u2, u6, 4, 5, 6, 7, 12, 13, 14, 15);
  const v8f c7 = __builtin_shufflevector(u3, u7, 4, 5, 6, 7, 12, 13, 14, 15);
  return ((((((((splat(0.0f) + c0) + c1) + c2) + c3) + c4) + c5) + c6) + c7);
}

// Scores of query rows q0, q1 against keys k[0..3], times scale, into s0[0..3] and s1[0..3].
template <typename KV>
inline void scores_2x4(float* s0, float* s1, const float* q0, const float* q1, const KV* const* k, int64_t D,
                       float scale) {
  v8f a00{}, a01{}, a02{}, a03{}, a10{}, a11{}, a12{}, a13{};
  int64_t d = 0;
  for (; d + kLanes <= D; d += kLanes) {
    const v8f x0 = load(q0 + d), x1 = load(q1 + d);
    const v8f k0 = load(k[0] + d), k1 = load(k[1] + d), k2 = load(k[2] + d), k3 = load(k[3] + d);
    a00 += x0 * k0;
    a01 += x0 * k1;
    a02 += x0 * k2;
    a03 += x0 * k3;
    a10 += x1 * k0;
    a11 += x1 * k1;
    a12 += x1 * k2;
    a13 += x1 * k3;
  }
  float s[2 * 4];
  store(s, lane_sums(a00, a01, a02, a03, a10, a11, a12, a13));
  for (; d < D; ++d)
    for (int c = 0; c < 4; ++c) {
      s[c] += q0[d] * widen(k[c][d]);
      s[4 + c] += q1[d] * widen(k[c][d]);
    }
  for (int c = 0; c < 4; ++c) {
    s0[c] = s[c] * scale;
    s1[c] = s[4 + c] * scale;
  }
}

// out[0, D) = sum_{j < n} p[j] v[j][0, D), in key order; 64 dims at a time held in registers.
template <typename KV>
void weighted_sum(float* out, const float* p, const KV* const* v, int64_t n, int64_t D) {
  int64_t d = 0;
  for (; d + 8 * kLanes <= D; d += 8 * kLanes) {
    v8f a0{}, a1{}, a2{}, a3{}, a4{}, a5{}, a6{}, a7{};
    for (int64_t j = 0; j < n; ++j) {
      const v8f pj = splat(p[j]);
      const KV* vj = v[j] + d;
      a0 += pj * load(vj);
      a1 += pj * load(vj + kLanes);
      a2 += pj * load(vj + 2 * kLanes);
      a3 += pj * load(vj + 3 * kLanes);
      a4 += pj * load(vj + 4 * kLanes);
      a5 += pj * load(vj + 5 * kLanes);
      a6 += pj * load(vj + 6 * kLanes);
      a7 += pj * load(vj + 7 * kLanes);
    }
    const v8f a[8] = {a0, a1, a2, a3, a4, a5, a6, a7};
    for (int i = 0; i < 8; ++i) store(out + d + i * kLanes, a[i]);
  }
  for (; d + kLanes <= D; d += kLanes) {
    v8f a{};
    for (int64_t j = 0; j < n; ++j) a += splat(p[j]) * load(v[j] + d);
    store(out + d, a);
  }
  for (; d < D; ++d) {
    float a = 0.0f;
    for (int64_t j = 0; j < n; ++j) a += p[j] * widen(v[j][d]);
    out[d] = a;
  }
}

// Tokens [t0, t1) of one sequence, consecutive in the batch.
struct TokenRun {
  int64_t t0, t1;
};

std::vector<TokenRun> token_runs(const PagedAttentionShape& s, int64_t max_tokens) {
  std::vector<TokenRun> runs;
  for (int64_t t = 0; t < s.T; ++t) {
    if (runs.empty() || s.seq_of_token[t] != s.seq_of_token[t - 1] || t - runs.back().t0 == max_tokens)
      runs.push_back({t, t});
    runs.back().t1 = t + 1;
  }
  return runs;
}

template <typename KV>
void paged_attention(float* out, const float* q, const KV* k_cache, const KV* v_cache, const PagedAttentionShape& s) {
  const int64_t D = s.head_dim, group = s.n_heads / s.n_kv_heads, kv_dim = s.n_kv_heads * D;
  const int64_t run_tokens = std::max<int64_t>(1, kTileRows / group);
  const std::vector<TokenRun> runs = token_runs(s, run_tokens);
  const int64_t n_runs = static_cast<int64_t>(runs.size());
  int64_t longest = 0;
  for (int64_t t = 0; t < s.T; ++t) longest = std::max<int64_t>(longest, s.n_keys[t]);
  // unit u = (run u / n_kv_heads, kv head u % n_kv_heads); cost ~ its score count
  std::vector<double> cost(static_cast<size_t>(n_runs * s.n_kv_heads));
  for (int64_t u = 0; u < n_runs * s.n_kv_heads; ++u) {
    const TokenRun& r = runs[u / s.n_kv_heads];
    for (int64_t t = r.t0; t < r.t1; ++t) cost[u] += static_cast<double>(group * s.n_keys[t]);
  }
  parallel_for_balanced(
      cost,
      [&](int64_t u0, int64_t u1) {
        std::vector<float> p(static_cast<size_t>(run_tokens * group * longest));
        std::vector<const KV*> keys(static_cast<size_t>(longest)), values(static_cast<size_t>(longest));
        std::vector<const float*> q_rows;
        std::vector<int64_t> n_rows;
        for (int64_t u = u0; u < u1; ++u) {
          const TokenRun& r = runs[u / s.n_kv_heads];
          const int64_t kvh = u % s.n_kv_heads;
          const int32_t* table = s.block_tables + static_cast<int64_t>(s.seq_of_token[r.t0]) * s.max_blocks;
          int64_t n_max = 0;
          q_rows.clear();
          n_rows.clear();
          for (int64_t t = r.t0; t < r.t1; ++t) {
            n_max = std::max<int64_t>(n_max, s.n_keys[t]);
            for (int64_t h = 0; h < group; ++h) {
              q_rows.push_back(q + (t * s.n_heads + kvh * group + h) * D);
              n_rows.push_back(s.n_keys[t]);
            }
          }
          for (int64_t j = 0; j < n_max; ++j) {
            const int64_t slot = static_cast<int64_t>(table[j / s.block_size]) * s.block_size + j % s.block_size;
            keys[j] = k_cache + slot * kv_dim + kvh * D;
            values[j] = v_cache + slot * kv_dim + kvh * D;
          }
          const int64_t rows = static_cast<int64_t>(q_rows.size());
          // Scores two rows by four keys at a time, up to the longer row's keys (a lone last row pairs
          // with itself; a short quad repeats its last key): the extra scores are never read.
          for (int64_t i = 0; i < rows; i += 2) {
            const int64_t i1 = std::min(i + 1, rows - 1), n = std::max(n_rows[i], n_rows[i1]);
            for (int64_t j = 0; j < n; j += 4) {
              const KV* quad[4];
              for (int64_t c = 0; c < 4; ++c) quad[c] = keys[std::min(j + c, n - 1)];
              float s0[4], s1[4];
              scores_2x4(s0, s1, q_rows[i], q_rows[i1], quad, D, s.scale);
              const int64_t valid = std::min<int64_t>(4, n - j);
              std::copy(s0, s0 + valid, p.data() + i * longest + j);
              if (i1 != i) std::copy(s1, s1 + valid, p.data() + i1 * longest + j);
            }
          }
          for (int64_t i = 0; i < rows; ++i) {
            float* pi = p.data() + i * longest;
            softmax_inplace(pi, n_rows[i]);
            weighted_sum(out + (q_rows[i] - q), pi, values.data(), n_rows[i], D);
          }
        }
      },
      // A range gets at least ~64K flops (4 D per score): waking a thread costs more than less work.
      static_cast<double>(int64_t(1) << 16) / static_cast<double>(4 * D));
}

}  // namespace

void paged_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                             const PagedAttentionShape& s) {
  paged_attention(out, q, k_cache, v_cache, s);
}

void paged_attention_forward_bf16(float* out, const float* q, const uint16_t* k_cache, const uint16_t* v_cache,
                                  const PagedAttentionShape& s) {
  paged_attention(out, q, k_cache, v_cache, s);
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(KvCacheWrite, cpu::kv_cache_write);
MEDIX_CPU_OP(PagedAttentionForward, cpu::paged_attention_forward);
MEDIX_CPU_OP(KvCacheWriteBf16, cpu::kv_cache_write_bf16);
MEDIX_CPU_OP(PagedAttentionForwardBf16, cpu::paged_attention_forward_bf16);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
// Inference over a paged KV cache, the cache in the entry's dtype: f32, or bf16 (the cache follows the
// compute dtype). The cache's slot count, the block tables' sequences and the keys a table can reach
// are derived from the lengths, so every index is checked against them.
namespace medix::op_decl {
namespace {

void kv_cache_shape(Attrs& a, const Lengths& lengths) {
  const int64_t kv_dim = a.i("kvDim"), k = lengths.at("k"), cache = lengths.at("kCache");
  MEDIX_CHECK(k % kv_dim == 0, "k length ", k, " is not a multiple of kvDim (", kv_dim, ")");
  MEDIX_CHECK(cache % kv_dim == 0, "kCache length ", cache, " is not a multiple of kvDim (", kv_dim, ")");
  a.num["T"] = static_cast<double>(k / kv_dim);
  a.num["nSlots"] = static_cast<double>(cache / kv_dim);
}

double kv_cache_write_f32_run(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<KvCacheWrite>(t.f("kCache"), t.f("vCache"), t.f("k"), t.f("v"), t.i("slots"), a.i("T"), a.i("kvDim"));
  return 0.0;
}

double kv_cache_write_bf16_run(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<KvCacheWriteBf16>(t.h("kCache"), t.h("vCache"), t.f("k"), t.f("v"), t.i("slots"), a.i("T"), a.i("kvDim"));
  return 0.0;
}

OpDef kv_cache_write(DType dtype) {
  const bool bf16 = dtype == DType::BF16;
  OpDef d = family("kv_cache_write", bf16 ? op_ids<KvCacheWriteBf16>() : op_ids<KvCacheWrite>(), dtype);
  d.forward = {bf16 ? "kvCacheWriteBf16" : "kvCacheWrite",
               {typed(inout("kCache", ""), dtype), typed(inout("vCache", "kCache.length"), dtype), in("k", ""),
                in("v", "k.length"), ids("slots", "T", 0, "nSlots")},
               {integer("kvDim", 1, kMaxDim)},
               kv_cache_shape,
               bf16 ? kv_cache_write_bf16_run : kv_cache_write_f32_run};
  return d;
}

OpDef kv_cache_write_f32() { return kv_cache_write(DType::F32); }

OpDef kv_cache_write_bf16() { return kv_cache_write(DType::BF16); }

void paged_attention_shape(Attrs& a, const Lengths& lengths) {
  attention_shape(a, lengths);
  const int64_t block = a.i("blockSize") * a.i("kvHeads") * a.i("headDim"), cache = lengths.at("kCache");
  MEDIX_CHECK(cache % block == 0, "kCache length ", cache, " is not a whole number of blocks of blockSize*kvHeads*",
              "headDim (", block, ")");
  const int64_t tables = lengths.at("blockTables"), max_blocks = a.i("maxBlocks");
  MEDIX_CHECK(tables % max_blocks == 0, "blockTables length ", tables, " is not a multiple of maxBlocks (", max_blocks,
              ")");
  a.num["blocks"] = static_cast<double>(cache / block);
  a.num["seqs"] = static_cast<double>(tables / max_blocks);
  a.num["keysBound"] = static_cast<double>(max_blocks * a.i("blockSize") + 1);  // n_keys <= a table's slots
}

PagedAttentionShape paged_attention(const Attrs& a, const Tensors& t) {
  return {a.i("T"),           a.i("heads"),     a.i("kvHeads"),    a.i("headDim"), a.i("blockSize"),
          t.i("blockTables"), a.i("maxBlocks"), t.i("seqOfToken"), t.i("nKeys"),   static_cast<float>(a.f("scale"))};
}

double paged_attention_f32_run(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<PagedAttentionForward>(t.f("out"), t.f("q"), t.f("kCache"), t.f("vCache"), paged_attention(a, t));
  return 0.0;
}

double paged_attention_bf16_run(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<PagedAttentionForwardBf16>(t.f("out"), t.f("q"), t.h("kCache"), t.h("vCache"), paged_attention(a, t));
  return 0.0;
}

OpDef paged_attention_op(DType dtype) {
  const bool bf16 = dtype == DType::BF16;
  OpDef d =
      family("paged_attention", bf16 ? op_ids<PagedAttentionForwardBf16>() : op_ids<PagedAttentionForward>(), dtype);
  d.forward = {bf16 ? "pagedAttentionForwardBf16" : "pagedAttentionForward",
               {in("q", "T*heads*headDim"), typed(in("kCache", ""), dtype), typed(in("vCache", "kCache.length"), dtype),
                ids("blockTables", "", 0, "blocks"), ids("seqOfToken", "T", 0, "seqs"),
                ids("nKeys", "T", 1, "keysBound"), out("out", "T*heads*headDim")},
               {integer("heads", 1, kMaxHeads), integer("kvHeads", 1, kMaxHeads), integer("headDim", 1, 65536),
                integer("blockSize", 1, 4096), integer("maxBlocks", 1, kMaxTokens), number_or("scale", NAN)},
               paged_attention_shape,
               bf16 ? paged_attention_bf16_run : paged_attention_f32_run};
  return d;
}

OpDef paged_attention_f32() { return paged_attention_op(DType::F32); }

OpDef paged_attention_bf16() { return paged_attention_op(DType::BF16); }

}  // namespace

MEDIX_OP_TABLE_ENTRY(kv_cache_write_f32);
MEDIX_OP_TABLE_ENTRY(kv_cache_write_bf16);
MEDIX_OP_TABLE_ENTRY(paged_attention_f32);
MEDIX_OP_TABLE_ENTRY(paged_attention_bf16);

}  // namespace medix::op_decl
