// Vision tower forward and backward, composed from the ops (linear, layernorm, gelu, vision rope and
// position table, attention without the causal mask). Activations are kept per block for backward.
#include "qwen3_vl_vision.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "../ops/attention.h"
#include "../ops/gelu.h"
#include "../ops/layernorm.h"
#include "../ops/linear.h"
#include "../ops/vision_pos_embed.h"
#include "../ops/vision_rope.h"

namespace medix {
namespace {

// Parameter indices (vision_parameters order): 3 tower tensors, 12 per block, 6 per merger.
constexpr size_t kPatchW = 0, kPatchB = 1, kPosTable = 2, kFirstBlock = 3, kPerBlock = 12, kPerMerger = 6;
enum Block : size_t { kN1W, kN1B, kN2W, kN2B, kQkvW, kQkvB, kProjW, kProjB, kFc1W, kFc1B, kFc2W, kFc2B };
enum Merger : size_t { kNormW, kNormB, kMFc1W, kMFc1B, kMFc2W, kMFc2B };

size_t block_param(size_t i, size_t k) { return kFirstBlock + kPerBlock * i + k; }
size_t merger_first(const VisionConfig& c) { return kFirstBlock + kPerBlock * static_cast<size_t>(c.depth); }
size_t deepstack_first(const VisionConfig& c, size_t j) { return merger_first(c) + kPerMerger * (1 + j); }

std::vector<float> zeros(int64_t n) { return std::vector<float>(static_cast<size_t>(n), 0.0f); }

void add_to(std::vector<float>& y, const std::vector<float>& x) {
  for (size_t i = 0; i < y.size(); ++i) y[i] += x[i];
}

AttentionShape attention_shape(const VisionConfig& c, int64_t N, const std::vector<int32_t>& cu) {
  AttentionShape s;
  s.T = N;
  s.n_heads = s.n_kv_heads = c.heads;
  s.head_dim = c.head_dim();
  s.cu_seqlens = cu.data();
  s.n_seqs = static_cast<int64_t>(cu.size()) - 1;
  s.scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim()));
  s.causal = false;
  return s;
}

// Index of block i among the deepstack layers, or -1.
int64_t deepstack_slot(const VisionConfig& c, int64_t i) {
  auto it = std::find(c.deepstack_indexes.begin(), c.deepstack_indexes.end(), i);
  return it == c.deepstack_indexes.end() ? -1 : it - c.deepstack_indexes.begin();
}

}  // namespace

int64_t VisionParam::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<VisionParam> vision_parameters(const VisionConfig& c) {
  const int64_t C = c.hidden, I = c.intermediate, K = c.merged_dim();
  std::vector<VisionParam> out = {{"patch_embed.proj.weight", {C, c.in_channels, c.temporal_patch, c.patch, c.patch}},
                                  {"patch_embed.proj.bias", {C}},
                                  {"pos_embed.weight", {c.side * c.side, C}}};
  for (int64_t i = 0; i < c.depth; ++i) {
    const std::string b = "blocks." + std::to_string(i) + ".";
    for (const char* n : {"norm1", "norm2"}) {
      out.push_back({b + n + ".weight", {C}});
      out.push_back({b + n + ".bias", {C}});
    }
    out.push_back({b + "attn.qkv.weight", {3 * C, C}});
    out.push_back({b + "attn.qkv.bias", {3 * C}});
    out.push_back({b + "attn.proj.weight", {C, C}});
    out.push_back({b + "attn.proj.bias", {C}});
    out.push_back({b + "mlp.linear_fc1.weight", {I, C}});
    out.push_back({b + "mlp.linear_fc1.bias", {I}});
    out.push_back({b + "mlp.linear_fc2.weight", {C, I}});
    out.push_back({b + "mlp.linear_fc2.bias", {C}});
  }
  auto merger = [&](const std::string& m, int64_t norm_dim) {
    out.push_back({m + "norm.weight", {norm_dim}});
    out.push_back({m + "norm.bias", {norm_dim}});
    out.push_back({m + "linear_fc1.weight", {K, K}});
    out.push_back({m + "linear_fc1.bias", {K}});
    out.push_back({m + "linear_fc2.weight", {c.out_hidden, K}});
    out.push_back({m + "linear_fc2.bias", {c.out_hidden}});
  };
  merger("merger.", C);
  for (size_t j = 0; j < c.deepstack_indexes.size(); ++j) merger("deepstack_merger_list." + std::to_string(j) + ".", K);
  return out;
}

void check_vision_config(const VisionConfig& c) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw std::invalid_argument("vision config: " + what);
  };
  need(c.depth >= 1, "depth must be >= 1");
  need(c.hidden >= 1 && c.heads >= 1 && c.hidden % c.heads == 0, "hidden_size must be a multiple of num_heads");
  need(c.head_dim() % 4 == 0, "head_dim (hidden_size / num_heads) must be a multiple of 4 for the 2D rotary");
  need(c.intermediate >= 1 && c.out_hidden >= 1 && c.patch_inputs() >= 1, "sizes must be >= 1");
  need(c.merge >= 1 && c.side >= 1, "spatial_merge_size and num_position_embeddings must be >= 1");
  for (int64_t i : c.deepstack_indexes) need(i >= 0 && i < c.depth, "deepstack_visual_indexes must lie in [0, depth)");
}

VisionTower::VisionTower(VisionConfig cfg, bool recompute) : cfg_(std::move(cfg)), recompute_(recompute) {
  check_vision_config(cfg_);
}

size_t VisionTower::activation_bytes(const VisionConfig& c, int64_t N, bool training, bool recompute) {
  const int64_t C = c.hidden, I = c.intermediate, M = N / (c.merge * c.merge), K = c.merged_dim();
  const int64_t block = N * (9 * C + 2 * I + 4 + c.heads);                  // BlockActs
  const int64_t merger = 2 * N * C + 2 * N + 2 * M * K + M * c.out_hidden;  // MergerActs
  const int64_t mergers = 1 + static_cast<int64_t>(c.deepstack_indexes.size());
  int64_t floats = N * c.patch_inputs() + 2 * N * C + mergers * merger + c.depth * (recompute ? N * C : block);
  if (training) floats += N * (14 * C + 2 * I) + (recompute ? block : 0);  // dx and a block backward's scratch
  return sizeof(float) * static_cast<size_t>(floats);
}

void VisionTower::release_block(size_t i, bool keep_input) {
  BlockActs& a = blocks_[i];
  std::vector<float> in = keep_input ? std::move(a.in) : std::vector<float>();
  a = BlockActs{};
  a.in = std::move(in);
}

void VisionTower::forward(const std::vector<const float*>& params, const float* pixels,
                          const std::vector<ImageGrid>& grids) {
  const int64_t C = cfg_.hidden;
  params_ = params;
  grids_ = grids;
  coords_ = vision_patch_coords(grids, cfg_.merge);
  cu_ = vision_cu_seqlens(grids);
  N_ = cu_.back();
  pixels_.assign(pixels, pixels + N_ * cfg_.patch_inputs());
  patch_out_ = zeros(N_ * C);
  cpu::linear_forward(patch_out_.data(), pixels, p(kPatchW), p(kPatchB), N_, cfg_.patch_inputs(), C);
  embedded_ = zeros(N_ * C);
  cpu::vision_pos_embed_forward(embedded_.data(), p(kPosTable), grids, cfg_.merge, cfg_.side, C);
  add_to(embedded_, patch_out_);

  blocks_.assign(static_cast<size_t>(cfg_.depth), BlockActs{});
  deepstack_.assign(cfg_.deepstack_indexes.size(), MergerActs{});
  const std::vector<float>* x = &embedded_;
  for (int64_t i = 0; i < cfg_.depth; ++i) {
    block_forward(static_cast<size_t>(i), *x);
    // The previous block's output is now this block's input: with recompute, that input is all it keeps.
    if (recompute_ && i > 0) release_block(static_cast<size_t>(i - 1), true);
    x = &blocks_[i].out;
    const int64_t j = deepstack_slot(cfg_, i);
    if (j >= 0) merger_forward(deepstack_[j], deepstack_first(cfg_, j), true, *x);
  }
  merger_forward(merger_, merger_first(cfg_), false, *x);
  if (recompute_) release_block(static_cast<size_t>(cfg_.depth - 1), true);
}

void VisionTower::block_forward(size_t i, const std::vector<float>& x) {
  BlockActs& a = blocks_[i];
  const int64_t N = N_, C = cfg_.hidden, I = cfg_.intermediate, H = cfg_.heads, D = cfg_.head_dim();
  auto w = [&](size_t k) { return p(block_param(i, k)); };
  a.in = x;
  a.ln1 = zeros(N * C), a.mean1 = zeros(N), a.rstd1 = zeros(N);
  cpu::layernorm_forward(a.ln1.data(), a.mean1.data(), a.rstd1.data(), x.data(), w(kN1W), w(kN1B), N, C, cfg_.eps);
  std::vector<float> qkv = zeros(N * 3 * C);
  cpu::linear_forward(qkv.data(), a.ln1.data(), w(kQkvW), w(kQkvB), N, C, 3 * C);
  a.q = zeros(N * C), a.k = zeros(N * C), a.v = zeros(N * C);
  for (int64_t t = 0; t < N; ++t) {
    const float* row = qkv.data() + t * 3 * C;
    std::copy(row, row + C, a.q.data() + t * C);
    std::copy(row + C, row + 2 * C, a.k.data() + t * C);
    std::copy(row + 2 * C, row + 3 * C, a.v.data() + t * C);
  }
  cpu::vision_rope_forward(a.q.data(), a.q.data(), coords_.data(), N, H, D, cfg_.theta);
  cpu::vision_rope_forward(a.k.data(), a.k.data(), coords_.data(), N, H, D, cfg_.theta);
  a.attn = zeros(N * C), a.lse = zeros(N * H);
  cpu::attention_forward(a.attn.data(), a.lse.data(), a.q.data(), a.k.data(), a.v.data(),
                         attention_shape(cfg_, N, cu_));
  a.mid = zeros(N * C);
  cpu::linear_forward(a.mid.data(), a.attn.data(), w(kProjW), w(kProjB), N, C, C);
  add_to(a.mid, x);
  a.ln2 = zeros(N * C), a.mean2 = zeros(N), a.rstd2 = zeros(N);
  cpu::layernorm_forward(a.ln2.data(), a.mean2.data(), a.rstd2.data(), a.mid.data(), w(kN2W), w(kN2B), N, C, cfg_.eps);
  a.fc1 = zeros(N * I), a.act = zeros(N * I);
  cpu::linear_forward(a.fc1.data(), a.ln2.data(), w(kFc1W), w(kFc1B), N, C, I);
  cpu::gelu_forward(a.act.data(), a.fc1.data(), N * I, cpu::GeluKind::kTanh);
  a.out = zeros(N * C);
  cpu::linear_forward(a.out.data(), a.act.data(), w(kFc2W), w(kFc2B), N, I, C);
  add_to(a.out, a.mid);
}

void VisionTower::merger_forward(MergerActs& a, size_t first, bool postshuffle, const std::vector<float>& x) {
  const int64_t C = cfg_.hidden, K = cfg_.merged_dim(), M = tokens();
  auto w = [&](size_t k) { return p(first + k); };
  a.in = x;
  // The 2x2 shuffle is a view: merge^2 consecutive patch rows of C are one row of K.
  const int64_t rows = postshuffle ? M : N_, dim = postshuffle ? K : C;
  a.ln = zeros(N_ * C), a.mean = zeros(rows), a.rstd = zeros(rows);
  cpu::layernorm_forward(a.ln.data(), a.mean.data(), a.rstd.data(), x.data(), w(kNormW), w(kNormB), rows, dim,
                         cfg_.eps);
  a.fc1 = zeros(M * K), a.act = zeros(M * K);
  cpu::linear_forward(a.fc1.data(), a.ln.data(), w(kMFc1W), w(kMFc1B), M, K, K);
  cpu::gelu_forward(a.act.data(), a.fc1.data(), M * K, cpu::GeluKind::kErf);
  a.out = zeros(M * cfg_.out_hidden);
  cpu::linear_forward(a.out.data(), a.act.data(), w(kMFc2W), w(kMFc2B), M, K, cfg_.out_hidden);
}

void VisionTower::backward(const std::vector<float*>& g, const float* d_merged,
                           const std::vector<const float*>& d_deepstack) {
  const int64_t C = cfg_.hidden;
  std::vector<float> dx = zeros(N_ * C);
  if (d_merged) merger_backward(merger_, merger_first(cfg_), false, d_merged, dx, g);
  for (int64_t i = cfg_.depth - 1; i >= 0; --i) {
    const int64_t j = deepstack_slot(cfg_, i);
    if (j >= 0 && j < static_cast<int64_t>(d_deepstack.size()) && d_deepstack[j])
      merger_backward(deepstack_[j], deepstack_first(cfg_, j), true, d_deepstack[j], dx, g);
    if (recompute_) block_forward(static_cast<size_t>(i), std::vector<float>(blocks_[i].in));
    block_backward(static_cast<size_t>(i), dx, g);
    if (recompute_) release_block(static_cast<size_t>(i), true);
  }
  // dx is now the gradient of patch embedding + position embedding.
  cpu::linear_backward(nullptr, g[kPatchW], g[kPatchB], dx.data(), pixels_.data(), p(kPatchW), N_, cfg_.patch_inputs(),
                       C);
  cpu::vision_pos_embed_backward(g[kPosTable], dx.data(), grids_, cfg_.merge, cfg_.side, C);
}

void VisionTower::block_backward(size_t i, std::vector<float>& dx, const std::vector<float*>& g) {
  BlockActs& a = blocks_[i];
  const int64_t N = N_, C = cfg_.hidden, I = cfg_.intermediate, H = cfg_.heads, D = cfg_.head_dim();
  auto w = [&](size_t k) { return p(block_param(i, k)); };
  auto gw = [&](size_t k) { return g[block_param(i, k)]; };
  // out = mid + fc2(gelu(fc1(ln2(mid)))): dx flows to mid directly and through the MLP.
  std::vector<float> d_act = zeros(N * I), d_fc1 = zeros(N * I), d_ln2 = zeros(N * C);
  cpu::linear_backward(d_act.data(), gw(kFc2W), gw(kFc2B), dx.data(), a.act.data(), w(kFc2W), N, I, C);
  cpu::gelu_backward(d_fc1.data(), d_act.data(), a.fc1.data(), N * I, cpu::GeluKind::kTanh);
  cpu::linear_backward(d_ln2.data(), gw(kFc1W), gw(kFc1B), d_fc1.data(), a.ln2.data(), w(kFc1W), N, C, I);
  std::vector<float> d_mid = dx;
  cpu::layernorm_backward(d_mid.data(), gw(kN2W), gw(kN2B), d_ln2.data(), a.mid.data(), w(kN2W), a.mean2.data(),
                          a.rstd2.data(), N, C);
  // mid = in + proj(attention(rope(q), rope(k), v)), q|k|v = qkv(ln1(in)).
  std::vector<float> d_attn = zeros(N * C);
  cpu::linear_backward(d_attn.data(), gw(kProjW), gw(kProjB), d_mid.data(), a.attn.data(), w(kProjW), N, C, C);
  std::vector<float> dq = zeros(N * C), dk = zeros(N * C), dv = zeros(N * C);
  cpu::attention_backward(dq.data(), dk.data(), dv.data(), d_attn.data(), a.attn.data(), a.lse.data(), a.q.data(),
                          a.k.data(), a.v.data(), attention_shape(cfg_, N, cu_));
  std::vector<float> d_qkv = zeros(N * 3 * C);
  std::vector<float> dq_pre = zeros(N * C), dk_pre = zeros(N * C);
  cpu::vision_rope_backward(dq_pre.data(), dq.data(), coords_.data(), N, H, D, cfg_.theta);
  cpu::vision_rope_backward(dk_pre.data(), dk.data(), coords_.data(), N, H, D, cfg_.theta);
  for (int64_t t = 0; t < N; ++t) {
    float* row = d_qkv.data() + t * 3 * C;
    std::copy(dq_pre.data() + t * C, dq_pre.data() + (t + 1) * C, row);
    std::copy(dk_pre.data() + t * C, dk_pre.data() + (t + 1) * C, row + C);
    std::copy(dv.data() + t * C, dv.data() + (t + 1) * C, row + 2 * C);
  }
  std::vector<float> d_ln1 = zeros(N * C);
  cpu::linear_backward(d_ln1.data(), gw(kQkvW), gw(kQkvB), d_qkv.data(), a.ln1.data(), w(kQkvW), N, C, 3 * C);
  dx = d_mid;
  cpu::layernorm_backward(dx.data(), gw(kN1W), gw(kN1B), d_ln1.data(), a.in.data(), w(kN1W), a.mean1.data(),
                          a.rstd1.data(), N, C);
}

void VisionTower::merger_backward(MergerActs& a, size_t first, bool postshuffle, const float* dout,
                                  std::vector<float>& dx, const std::vector<float*>& g) {
  const int64_t C = cfg_.hidden, K = cfg_.merged_dim(), M = tokens();
  auto w = [&](size_t k) { return p(first + k); };
  std::vector<float> d_act = zeros(M * K), d_fc1 = zeros(M * K), d_ln = zeros(M * K);
  cpu::linear_backward(d_act.data(), g[first + kMFc2W], g[first + kMFc2B], dout, a.act.data(), w(kMFc2W), M, K,
                       cfg_.out_hidden);
  cpu::gelu_backward(d_fc1.data(), d_act.data(), a.fc1.data(), M * K, cpu::GeluKind::kErf);
  cpu::linear_backward(d_ln.data(), g[first + kMFc1W], g[first + kMFc1B], d_fc1.data(), a.ln.data(), w(kMFc1W), M, K,
                       K);
  const int64_t rows = postshuffle ? M : N_, dim = postshuffle ? K : C;
  cpu::layernorm_backward(dx.data(), g[first + kNormW], g[first + kNormB], d_ln.data(), a.in.data(), w(kNormW),
                          a.mean.data(), a.rstd.data(), rows, dim);
}

}  // namespace medix
