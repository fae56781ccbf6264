// Causal grouped-query attention over packed sequences, forward and backward, on the CPU.
//
// Work is done in tiles: one tile is a block of up to kBlockRows query rows of one head of one
// sequence, against every key its rows may see (the sequence's keys up to the block's last row).
// A tile is three steps, each a single-threaded GEMM or a row loop:
//   S = scale * Q_blk K^T   (scores, [rows, keys], held in a per-thread workspace)
//   P = softmax of each row of S over its causal keys (keys past the row's own position get 0)
//   O_blk = P V
// The workspace is kBlockRows x (longest sequence) floats per thread, so memory stays linear in
// the sequence length, and no score is ever computed for a key of another sequence.
//
// Backward is flash-attention style: P is recomputed from q, k and the saved lse instead of being
// stored, and with D_i = sum_d dO[i,d] * O[i,d] (which equals sum_j P[i,j] * dP[i,j]):
//   dV += P^T dO,  dP = dO V^T,  dS = P * (dP - D),  dQ += scale * dS K,  dK += scale * dS^T Q.
// One task owns one (sequence, kv head): it alone writes those dk/dv rows and the dq rows of the
// query heads sharing that kv head, and it visits heads and blocks in a fixed order, so the
// result is bit-identical run to run and whatever the thread count.
#include "attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/cu_seqlens.h"
#include "../core/error.h"
#include "../core/gemm.h"
#include "../core/simd.h"
#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {
namespace {

// Query rows per tile: large enough that the GEMMs have work to amortise packing, small enough
// that a tile's scores (kBlockRows x seq_len floats) stay in cache for moderate lengths.
constexpr int64_t kBlockRows = 64;

// A block of query rows [row_begin, row_end) of sequence seq, positions relative to the sequence.
struct Block {
  int64_t seq, row_begin, row_end;
};

int64_t seq_start(const AttentionShape& s, int64_t seq) { return s.cu_seqlens[seq]; }
int64_t seq_len(const AttentionShape& s, int64_t seq) { return s.cu_seqlens[seq + 1] - s.cu_seqlens[seq]; }

void check_shape(const AttentionShape& s) {
  MEDIX_CHECK(s.T >= 0 && s.n_heads > 0 && s.n_kv_heads > 0 && s.head_dim > 0, "attention: bad shape (T ", s.T,
              ", heads ", s.n_heads, ", kv heads ", s.n_kv_heads, ", head_dim ", s.head_dim, ")");
  MEDIX_CHECK(s.n_heads % s.n_kv_heads == 0, "attention: n_heads (", s.n_heads, ") must be a multiple of n_kv_heads (",
              s.n_kv_heads, ")");
  MEDIX_CHECK(s.n_seqs >= 0, "attention: n_seqs must be >= 0, got ", s.n_seqs);
  check_cu_seqlens(s.cu_seqlens, s.n_seqs + 1, s.T, "attention", "cu_seqlens");
}

int64_t longest_sequence(const AttentionShape& s) {
  int64_t longest = 0;
  for (int64_t i = 0; i < s.n_seqs; ++i) longest = std::max(longest, seq_len(s, i));
  return longest;
}

// Every query block of every sequence, in packing order; empty sequences contribute none.
// The blocks of sequence i are blocks[first[i]] .. blocks[first[i+1] - 1].
struct BlockList {
  std::vector<Block> blocks;
  std::vector<int64_t> first;
};

BlockList query_blocks(const AttentionShape& s) {
  BlockList list;
  for (int64_t i = 0; i < s.n_seqs; ++i) {
    list.first.push_back(static_cast<int64_t>(list.blocks.size()));
    for (int64_t r = 0; r < seq_len(s, i); r += kBlockRows)
      list.blocks.push_back({i, r, std::min(r + kBlockRows, seq_len(s, i))});
  }
  list.first.push_back(static_cast<int64_t>(list.blocks.size()));
  return list;
}

// Cost of a tile, proportional to its score count (rows x visible keys).
double tile_cost(const AttentionShape& s, const Block& b) {
  const int64_t keys = s.causal ? b.row_end : seq_len(s, b.seq);
  return static_cast<double>(b.row_end - b.row_begin) * static_cast<double>(keys);
}

// Extents and strides of one tile in the packed tensors.
struct TileView {
  int64_t rows, keys;           // query rows in the tile; keys visible to its last row
  int64_t q_stride, kv_stride;  // floats between consecutive tokens: n_heads*D and n_kv_heads*D
  int64_t first_row;            // position of the tile's first row in its sequence
  bool causal;                  // false: every row sees all `keys`
};

TileView tile_view(const AttentionShape& s, const Block& b) {
  const int64_t keys = s.causal ? b.row_end : seq_len(s, b.seq);
  return {b.row_end - b.row_begin, keys, s.n_heads * s.head_dim, s.n_kv_heads * s.head_dim, b.row_begin, s.causal};
}

// P[rows, keys] <- the scores S = scale * Q_blk K^T, over every key of the tile (the causal mask is
// applied afterwards). `q` points at the tile's first query row (head applied), `k` at the
// sequence's first key (kv head applied).
void scores(float* P, const float* q, const float* k, const TileView& t, int64_t D, float scale) {
  gemm_serial(false, true, t.rows, t.keys, D, scale, q, t.q_stride, k, t.kv_stride, 0.0f, P, t.keys);
}

// Number of keys query row i of the tile may attend to: the causal mask (keys 0..first_row+i), or all.
int64_t visible_keys(const TileView& t, int64_t i) { return t.causal ? t.first_row + i + 1 : t.keys; }

// In place: each row of scores becomes its softmax over its visible keys (0 beyond them); writes
// the row's log-sum-exp to lse[i * lse_stride]. The exponentials are simd.h's vector ones: with
// scalar std::exp a training step's attention took a third longer (1.32 s against 0.98 s).
void softmax_rows(float* P, float* lse, int64_t lse_stride, const TileView& t) {
  for (int64_t i = 0; i < t.rows; ++i) {
    float* row = P + i * t.keys;
    const int64_t n = visible_keys(t, i);
    lse[i * lse_stride] = simd::softmax_inplace(row, n);
    std::fill(row + n, row + t.keys, 0.0f);
  }
}

// In place: scores become the probabilities the forward pass used, exp(S - lse), 0 past the
// causal limit.
void probabilities_from_lse(float* P, const float* lse, int64_t lse_stride, const TileView& t) {
  for (int64_t i = 0; i < t.rows; ++i) {
    float* row = P + i * t.keys;
    const int64_t n = visible_keys(t, i);
    simd::exp_shifted_inplace(row, n, lse[i * lse_stride]);
    std::fill(row + n, row + t.keys, 0.0f);
  }
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttentionShape& s) {
  check_shape(s);
  const int64_t H = s.n_heads, D = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const std::vector<Block> blocks = query_blocks(s).blocks;
  const int64_t n_blocks = static_cast<int64_t>(blocks.size());
  // unit u = (block u / H, head u % H)
  std::vector<double> cost(n_blocks * H);
  for (int64_t u = 0; u < n_blocks * H; ++u) cost[u] = tile_cost(s, blocks[u / H]);
  const int64_t workspace = kBlockRows * longest_sequence(s);

  parallel_for_balanced(cost, [&](int64_t u_begin, int64_t u_end) {
    std::vector<float> P(workspace);
    for (int64_t u = u_begin; u < u_end; ++u) {
      const Block& b = blocks[u / H];
      const int64_t h = u % H, kvh = h / group;
      const TileView t = tile_view(s, b);
      const int64_t row0 = seq_start(s, b.seq) + b.row_begin;  // token index of the first query row
      const int64_t key0 = seq_start(s, b.seq);                // token index of the first key
      scores(P.data(), q + (row0 * H + h) * D, k + (key0 * s.n_kv_heads + kvh) * D, t, D, s.scale);
      softmax_rows(P.data(), lse + row0 * H + h, H, t);
      gemm_serial(false, false, t.rows, D, t.keys, 1.0f, P.data(), t.keys, v + (key0 * s.n_kv_heads + kvh) * D,
                  t.kv_stride, 0.0f, out + (row0 * H + h) * D, t.q_stride);
    }
  });
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const AttentionShape& s) {
  check_shape(s);
  const int64_t H = s.n_heads, KV = s.n_kv_heads, D = s.head_dim, group = s.n_heads / s.n_kv_heads;
  const BlockList list = query_blocks(s);

  // unit u = (sequence u / KV, kv head u % KV); cost ~ group * len^2
  std::vector<double> cost(s.n_seqs * KV);
  for (int64_t u = 0; u < s.n_seqs * KV; ++u) {
    const double len = static_cast<double>(seq_len(s, u / KV));
    cost[u] = static_cast<double>(group) * len * len;
  }
  const int64_t workspace = kBlockRows * longest_sequence(s);

  parallel_for_balanced(cost, [&](int64_t u_begin, int64_t u_end) {
    std::vector<float> P(workspace), dS(workspace), delta(kBlockRows);
    for (int64_t u = u_begin; u < u_end; ++u) {
      const int64_t seq = u / KV, kvh = u % KV;
      const int64_t key0 = seq_start(s, seq);
      const float* k_seq = k + (key0 * KV + kvh) * D;
      const float* v_seq = v + (key0 * KV + kvh) * D;
      float* dk_seq = dk + (key0 * KV + kvh) * D;
      float* dv_seq = dv + (key0 * KV + kvh) * D;
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
        for (int64_t bi = list.first[seq]; bi < list.first[seq + 1]; ++bi) {
          const TileView t = tile_view(s, list.blocks[bi]);
          const int64_t row0 = key0 + t.first_row;
          const int64_t at = (row0 * H + h) * D;  // offset of the tile's first row in q/out/dout/dq
          const float* do_blk = dout + at;

          scores(P.data(), q + at, k_seq, t, D, s.scale);
          probabilities_from_lse(P.data(), lse + row0 * H + h, H, t);
          // dV[keys] += P^T dO
          gemm_serial(true, false, t.keys, D, t.rows, 1.0f, P.data(), t.keys, do_blk, t.q_stride, 1.0f, dv_seq,
                      t.kv_stride);
          // dP = dO V^T, then dS = P * (dP - delta) row by row
          gemm_serial(false, true, t.rows, t.keys, D, 1.0f, do_blk, t.q_stride, v_seq, t.kv_stride, 0.0f, dS.data(),
                      t.keys);
          for (int64_t i = 0; i < t.rows; ++i) {
            const float* o_row = out + at + i * t.q_stride;
            const float* do_row = do_blk + i * t.q_stride;
            float d = 0.0f;
            for (int64_t c = 0; c < D; ++c) d += do_row[c] * o_row[c];
            delta[i] = d;
          }
          for (int64_t i = 0; i < t.rows; ++i) {
            const float* p_row = P.data() + i * t.keys;
            float* ds_row = dS.data() + i * t.keys;
            for (int64_t j = 0; j < t.keys; ++j) ds_row[j] = p_row[j] * (ds_row[j] - delta[i]);
          }
          // dQ[rows] += scale * dS K;  dK[keys] += scale * dS^T Q
          gemm_serial(false, false, t.rows, D, t.keys, s.scale, dS.data(), t.keys, k_seq, t.kv_stride, 1.0f, dq + at,
                      t.q_stride);
          gemm_serial(true, false, t.keys, D, t.rows, s.scale, dS.data(), t.keys, q + at, t.q_stride, 1.0f, dk_seq,
                      t.kv_stride);
        }
      }
    }
  });
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(AttentionForward, cpu::attention_forward);
MEDIX_CPU_OP(AttentionBackward, cpu::attention_backward);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
// Attention over packed sequences: T from q's length.
namespace medix::op_decl {
namespace {

AttentionShape attention(const Attrs& a, const Tensors& t) {
  AttentionShape s{a.i("T"),
                   a.i("heads"),
                   a.i("kvHeads"),
                   a.i("headDim"),
                   t.i("cuSeqlens"),
                   t.n("cuSeqlens") - 1,
                   static_cast<float>(a.f("scale")),
                   a.b("causal")};
  s.bf16_operands = a.b("bf16Operands");
  return s;
}

OpDef attention_op() {
  const std::vector<AttrSpec> attrs = {integer("heads", 1, kMaxHeads), integer("kvHeads", 1, kMaxHeads),
                                       integer("headDim", 1, 65536),   number_or("scale", NAN),
                                       boolean_or("causal", true),     boolean_or("bf16Operands", false)};
  const ArgSpec q = in("q", "T*heads*headDim"), k = in("k", "T*kvHeads*headDim"), v = in("v", "T*kvHeads*headDim");
  const ArgSpec cu = offsets("cuSeqlens", "T");
  OpDef d = family("attention", op_ids<AttentionForward, AttentionBackward>());
  d.forward = {"attentionForward",
               {q, k, v, cu, out("out", "T*heads*headDim"), out("lse", "T*heads")},
               attrs,
               attention_shape,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<AttentionForward>(t.f("out"), t.f("lse"), t.f("q"), t.f("k"), t.f("v"), attention(a, t));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"attentionBackward",
                {in("dout", "T*heads*headDim"), in("out", "T*heads*headDim"), in("lse", "T*heads"), q, k, v, cu,
                 out("dq", "T*heads*headDim"), out("dk", "T*kvHeads*headDim"), out("dv", "T*kvHeads*headDim")},
                attrs,
                attention_shape,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<AttentionBackward>(t.f("dq"), t.f("dk"), t.f("dv"), t.f("dout"), t.f("out"), t.f("lse"),
                                            t.f("q"), t.f("k"), t.f("v"), attention(a, t));
                  return 0.0;
                }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(attention_op);

}  // namespace medix::op_decl
