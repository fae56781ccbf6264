// Inference with a KV cache: prefill and decode through the same path. New tokens run through the
// layers as in training forward (qkv_forward / output_mlp_forward), except that their K/V rows go
// into the paged cache and attention reads every visible key from there, so a decode step costs
// one token per sequence instead of the whole sequence.
#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "../core/cu_seqlens.h"
#include "../core/error.h"
#include "../ops/embedding.h"
#include "../ops/paged_attention.h"
#include "../ops/rmsnorm.h"
#include "qwen3.h"
#include "qwen3_internal.h"

namespace medix {
namespace {

void check_step(const CachedStep& s, const Qwen3Config& c, ComputeDType dtype, const KvCache& cache) {
  const char* fn = "forward_cached";
  MEDIX_CHECK(cache.config().layers == c.layers && cache.config().kv_dim == c.kv_heads * c.head_dim, fn,
              ": the KV cache was made for ", cache.config().layers, " layers of kv_dim ", cache.config().kv_dim,
              ", the model has ", c.layers, " of ", c.kv_heads * c.head_dim);
  MEDIX_CHECK(s.T > 0 && s.n_seqs > 0, fn, ": the step has no tokens");
  // The cache follows the compute dtype (made with the model's at the time, see Generator).
  MEDIX_CHECK(cache.dtype() == dtype, fn, ": the KV cache holds ", compute_dtype_name(cache.dtype()),
              ", the model computes in ", compute_dtype_name(dtype),
              " (make the generator after setting the compute dtype)");
  check_cu_seqlens(s.cu_seqlens, s.n_seqs + 1, s.T, fn, "cu_seqlens");
  std::unordered_set<int64_t> seen;
  int64_t blocks = 0;
  for (int64_t i = 0; i < s.n_seqs; ++i) {
    const int64_t n = s.cu_seqlens[i + 1] - s.cu_seqlens[i];
    MEDIX_CHECK(n > 0, fn, ": sequence ", i, " of the step has no new tokens");
    MEDIX_CHECK(seen.insert(s.seq_ids[i]).second, fn, ": sequence ", s.seq_ids[i], " appears twice in one step");
    blocks += cache.blocks_needed(s.seq_ids[i], n);  // throws for an unknown sequence
  }
  const KvCacheStats st = cache.stats();
  MEDIX_CHECK(blocks <= st.blocks_free, fn, ": the step needs ", blocks, " free KV cache blocks, only ", st.blocks_free,
              " of ", st.blocks_total, " are free");
  for (int64_t t = 0; t < s.T; ++t)
    MEDIX_CHECK(s.tokens[t] >= 0 && s.tokens[t] < c.vocab, fn, ": token ", t, " = ", s.tokens[t],
                " is outside [0, vocab_size = ", c.vocab, ")");
  for (int64_t k = 0; k < s.n_image_rows; ++k) {
    const int32_t t = s.image_rows[k];
    MEDIX_CHECK(t >= 0 && t < s.T && s.tokens[t] == c.image_token_id && (k == 0 || t > s.image_rows[k - 1]), fn,
                ": image_rows[", k, "] = ", t, " must be an image token of the step, after the rows before it");
  }
  MEDIX_CHECK(s.n_images > 0 || s.n_image_rows == 0, fn, ": the step has ", s.n_image_rows,
              " image rows but no images");
  for (int64_t r = 0; r < s.n_logit_rows; ++r)
    MEDIX_CHECK(s.logit_rows[r] >= 0 && s.logit_rows[r] < s.T, fn, ": logit_rows[", r, "] = ", s.logit_rows[r],
                " is outside [0, T = ", s.T, ")");
}

}  // namespace

void Qwen3Model::release_decode_workspace() { dws_.reset(); }

void Qwen3Model::forward_cached(const CachedStep& s, KvCache& cache, float* logits) {
  const Qwen3Config& c = cfg_;
  require_whole_weights("forward_cached");
  check_step(s, c, dtype_, cache);
  // The tower runs (and may throw on images that do not fit their tokens) before the cache changes.
  std::unique_ptr<VisionTower> tower;
  const std::vector<int32_t> image_rows(s.image_rows, s.image_rows + s.n_image_rows);
  // Inference: the tower keeps only its outputs (not every block's activations for a backward).
  if (s.n_images > 0) tower = run_tower(s.pixels, s.grids, s.n_images, s.n_image_rows, "forward_cached", false);
  const int64_t T = s.T, H = c.hidden, kvd = c.kv_heads * c.head_dim, R = s.n_logit_rows;
  const int P = c.position_components();
  const int64_t need = std::max(T, R);
  if (!dws_ || dws_->capacity < need) {
    dws_.reset();  // free first: never hold two workspaces
    auto ws = std::make_unique<DecodeWorkspace>(be_);
    ws->capacity = need;
    ws->x0 = ws->f(need * H);
    ws->x1 = ws->f(need * H);
    ws->tmp = ws->f(need * H);
    ws->acts = alloc_acts(*ws, need, false);
    ws->rows = ws->f(need * H);
    ws->final_xn = ws->f(need * H);
    ws->final_rstd = ws->f(need);
    ws->tokens = ws->i(need);
    ws->positions = ws->i(3 * need);
    ws->slots = ws->i(need);
    ws->seq_of_token = ws->i(need);
    ws->n_keys = ws->i(need);
    dws_ = std::move(ws);
  }
  DecodeWorkspace& ws = *dws_;

  // Host side: append to the cache (slots), number the keys each token sees, build block tables.
  std::vector<int32_t>&slots = ws.host_slots, &seq_of_token = ws.host_seq_of_token, &n_keys = ws.host_n_keys,
  &positions = ws.host_positions, &tables = ws.host_tables;
  slots.resize(T);
  seq_of_token.resize(T);
  n_keys.resize(T);
  positions.resize(static_cast<size_t>(P) * T);
  int64_t max_blocks = 1;
  for (int64_t i = 0; i < s.n_seqs; ++i) {
    const int64_t id = s.seq_ids[i], t0 = s.cu_seqlens[i], n = s.cu_seqlens[i + 1] - t0;
    const int64_t start = cache.length(id);
    cache.append(id, s.tokens + t0, n, slots.data() + t0);
    for (int64_t j = 0; j < n; ++j) {
      seq_of_token[t0 + j] = static_cast<int32_t>(i);
      n_keys[t0 + j] = static_cast<int32_t>(start + j + 1);
      if (!s.positions)
        for (int p = 0; p < P; ++p) positions[p * T + t0 + j] = static_cast<int32_t>(start + j);
    }
    max_blocks = std::max<int64_t>(max_blocks, static_cast<int64_t>(cache.blocks(id).size()));
  }
  if (s.positions) std::copy(s.positions, s.positions + P * T, positions.begin());
  tables.assign(static_cast<size_t>(s.n_seqs * max_blocks), 0);
  for (int64_t i = 0; i < s.n_seqs; ++i) {
    const auto& b = cache.blocks(s.seq_ids[i]);
    std::copy(b.begin(), b.end(), tables.begin() + i * max_blocks);
  }
  int32_t* tables_dev = ws.tables.get<int32_t>(sizeof(int32_t) * tables.size());
  be_.from_host(tables_dev, tables.data(), sizeof(int32_t) * tables.size());
  be_.from_host(ws.tokens, s.tokens, sizeof(int32_t) * T);
  be_.from_host(ws.positions, positions.data(), sizeof(int32_t) * positions.size());
  be_.from_host(ws.slots, slots.data(), sizeof(int32_t) * T);
  be_.from_host(ws.seq_of_token, seq_of_token.data(), sizeof(int32_t) * T);
  be_.from_host(ws.n_keys, n_keys.data(), sizeof(int32_t) * T);

  const PagedAttentionShape att{
      T,          c.heads,    c.kv_heads,      c.head_dim, cache.config().block_size,
      tables_dev, max_blocks, ws.seq_of_token, ws.n_keys,  1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  const float* embed = weights_ + params_[0].offset;
  be_.run<EmbeddingForward>(ws.x0, ws.tokens, embed, T, H);
  if (tower) place_visual(*tower, image_rows, ws.x0);
  float *x = ws.x0, *next = ws.x1;
  for (int64_t l = 0; l < c.layers; ++l) {
    Acts& a = ws.acts;
    qkv_forward(l, x, a, ws.positions, T);
    if (cache.dtype() == ComputeDType::bf16) {
      be_.run<KvCacheWriteBf16>(cache.k_bf16(l), cache.v_bf16(l), a.k, a.v, ws.slots, T, kvd);
      be_.run<PagedAttentionForwardBf16>(a.attn, a.q, cache.k_bf16(l), cache.v_bf16(l), att);
    } else {
      be_.run<KvCacheWrite>(cache.k(l), cache.v(l), a.k, a.v, ws.slots, T, kvd);
      be_.run<PagedAttentionForward>(a.attn, a.q, cache.k(l), cache.v(l), att);
    }
    output_mlp_forward(l, x, next, a, ws.tmp, T);
    std::swap(x, next);
    if (tower) add_deepstack(*tower, image_rows, l, x);
  }
  if (R == 0) return;
  // Only the rows whose next token is wanted go through the final norm and the [V, H] head.
  for (int64_t r = 0; r < R; ++r) be_.copy(ws.rows + r * H, x + static_cast<int64_t>(s.logit_rows[r]) * H, H);
  const float* final_norm = weights_ + params_[final_norm_tensor()].offset;
  be_.run<RmsnormForward>(ws.final_xn, ws.final_rstd, ws.rows, final_norm, R, H, c.rms_eps);
  const float* head = c.tie_embeddings ? embed : weights_ + params_.back().offset;
  linear(logits, ws.final_xn, head, R, H, c.vocab);
}

}  // namespace medix
