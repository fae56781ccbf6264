// Vision tower forward and backward, composed from the Backend's ops (linear, layernorm, gelu, vision
// rope and position table, attention without the causal mask). Activations are kept per block for
// backward. The qkv projection runs as three linears over the row blocks of its [3C, C] weight (q, k and
// v are contiguous there): each writes its own [N, C] tensor, with no strided split of a [N, 3C] one.
#include "qwen3_vl_vision.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "../ops/layernorm.h"
#include "../ops/residual.h"
#include "../ops/vision_pos_embed.h"
#include "../ops/vision_rope.h"
#include "linear_dtype.h"

namespace medix {
namespace {

// Parameter indices (vision_parameters order): 3 tower tensors, 12 per block, 6 per merger.
constexpr size_t kPatchW = 0, kPatchB = 1, kPosTable = 2, kFirstBlock = 3, kPerBlock = 12, kPerMerger = 6;
enum Block : size_t { kN1W, kN1B, kN2W, kN2B, kQkvW, kQkvB, kProjW, kProjB, kFc1W, kFc1B, kFc2W, kFc2B };
enum Merger : size_t { kNormW, kNormB, kMFc1W, kMFc1B, kMFc2W, kMFc2B };

size_t block_param(size_t i, size_t k) { return kFirstBlock + kPerBlock * i + k; }
size_t merger_first(const VisionConfig& c) { return kFirstBlock + kPerBlock * static_cast<size_t>(c.depth); }
size_t deepstack_first(const VisionConfig& c, size_t j) { return merger_first(c) + kPerMerger * (1 + j); }

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

VisionTower::VisionTower(Backend& be, VisionConfig cfg, bool recompute, bool for_backward, Bf16Copy bf16)
    : be_(be), cfg_(std::move(cfg)), recompute_(recompute), for_backward_(for_backward), bf16_(std::move(bf16)) {
  check_vision_config(cfg_);
}

void VisionTower::linear(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in,
                         int64_t out) const {
  linear_forward_as(be_, y, x, W, bf16_ ? bf16_(W) : nullptr, b, T, in, out);
}

void VisionTower::linear_back(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W,
                              int64_t T, int64_t in, int64_t out) const {
  linear_backward_as(be_, dx, dW, db, dy, x, W, bf16_ ? bf16_(W) : nullptr, T, in, out);
}

size_t VisionTower::activation_bytes(const VisionConfig& c, int64_t N, bool training, bool recompute) {
  const int64_t C = c.hidden, I = c.intermediate, M = N / (c.merge * c.merge), K = c.merged_dim();
  const int64_t block = N * (9 * C + 2 * I + 4 + c.heads);                  // BlockActs
  const int64_t merger = 2 * N * C + 2 * N + 2 * M * K + M * c.out_hidden;  // MergerActs
  const int64_t mergers = 1 + static_cast<int64_t>(c.deepstack_indexes.size());
  // Without training (for_backward false) one block's activations are alive at a time (its input is the
  // previous block's output, moved; forward).
  const int64_t blocks = training ? c.depth * (recompute ? N * C : block) : block;
  int64_t floats = N * c.patch_inputs() + 2 * N * C + mergers * merger + blocks;
  if (training) floats += N * (14 * C + 2 * I) + (recompute ? block : 0);  // dx and a block backward's scratch
  return sizeof(float) * static_cast<size_t>(floats);
}

VisionTower::Buf VisionTower::copy_of(const float* x, int64_t n) const {
  Buf b = written(n);
  be_.copy(b.get(), x, n);
  return b;
}

AttentionShape VisionTower::attention_shape() const {
  AttentionShape s;
  s.T = N_;
  s.n_heads = s.n_kv_heads = cfg_.heads;
  s.head_dim = cfg_.head_dim();
  s.cu_seqlens = cu_dev_.get();
  s.cu_seqlens_host = cu_.data();
  s.n_seqs = static_cast<int64_t>(cu_.size()) - 1;
  s.scale = 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim()));
  s.causal = false;
  s.bf16_operands = static_cast<bool>(bf16_);
  return s;
}

void VisionTower::release_block(size_t i, bool keep_input) {
  BlockActs& a = blocks_[i];
  Buf in = keep_input ? std::move(a.in) : Buf();
  a = BlockActs{};
  a.in = std::move(in);
}

void VisionTower::forward(const std::vector<const float*>& params, const float* pixels,
                          const std::vector<ImageGrid>& grids) {
  const int64_t C = cfg_.hidden, P = cfg_.patch_inputs();
  params_ = params;
  grids_ = grids;
  const std::vector<int32_t> coords = vision_patch_coords(grids, cfg_.merge);
  cu_ = vision_cu_seqlens(grids);
  N_ = cu_.back();
  coords_ = BackendArray<int32_t>::uninit(be_, static_cast<int64_t>(coords.size()));
  be_.from_host(coords_.get(), coords.data(), sizeof(int32_t) * coords.size());
  cu_dev_ = BackendArray<int32_t>::uninit(be_, static_cast<int64_t>(cu_.size()));
  be_.from_host(cu_dev_.get(), cu_.data(), sizeof(int32_t) * cu_.size());
  pixels_ = written(N_ * P);
  be_.from_host(pixels_.get(), pixels, sizeof(float) * static_cast<size_t>(N_ * P));
  patch_out_ = written(N_ * C);
  linear(patch_out_.get(), pixels_.get(), p(kPatchW), p(kPatchB), N_, P, C);
  embedded_ = written(N_ * C);
  be_.run<VisionPosEmbedForward>(embedded_.get(), p(kPosTable), grids, cfg_.merge, cfg_.side, C);
  be_.run<AddInplace>(embedded_.get(), patch_out_.get(), N_ * C);

  blocks_.clear();
  blocks_.resize(static_cast<size_t>(cfg_.depth));
  deepstack_.clear();
  deepstack_.resize(cfg_.deepstack_indexes.size());
  const float* x = embedded_.get();
  for (int64_t i = 0; i < cfg_.depth; ++i) {
    if (!for_backward_ && i > 0) {
      // Without backward the previous block's output becomes this block's input (moved, not copied) and
      // the rest of its activations go first, so one block's are alive at a time.
      blocks_[i].in = std::move(blocks_[i - 1].out);
      release_block(static_cast<size_t>(i - 1), false);
      x = blocks_[i].in.get();
    }
    block_forward(static_cast<size_t>(i), x);
    // The previous block's output is now this block's input: with recompute, that input is all it keeps.
    if (!for_backward_ && i == 0) {
      pixels_.reset();
      patch_out_.reset();
      embedded_.reset();
    } else if (for_backward_ && recompute_ && i > 0) {
      release_block(static_cast<size_t>(i - 1), true);
    }
    x = blocks_[i].out.get();
    const int64_t j = deepstack_slot(cfg_, i);
    if (j >= 0) merger_forward(deepstack_[j], deepstack_first(cfg_, j), true, x);
  }
  merger_forward(merger_, merger_first(cfg_), false, x);
  if (!for_backward_)
    release_block(static_cast<size_t>(cfg_.depth - 1), false);
  else if (recompute_)
    release_block(static_cast<size_t>(cfg_.depth - 1), true);
}

// x: the block's input, copied into its activations unless it is already there (a recomputation).
void VisionTower::block_forward(size_t i, const float* x) {
  BlockActs& a = blocks_[i];
  const int64_t N = N_, C = cfg_.hidden, I = cfg_.intermediate, H = cfg_.heads, D = cfg_.head_dim();
  auto w = [&](size_t k) { return p(block_param(i, k)); };
  if (a.in.get() != x) a.in = copy_of(x, N * C);
  a.ln1 = written(N * C), a.mean1 = written(N), a.rstd1 = written(N);
  be_.run<LayernormForward>(a.ln1.get(), a.mean1.get(), a.rstd1.get(), a.in.get(), w(kN1W), w(kN1B), N, C, cfg_.eps);
  a.q = written(N * C), a.k = written(N * C), a.v = written(N * C);
  float* qkv[] = {a.q.get(), a.k.get(), a.v.get()};
  for (int64_t j = 0; j < 3; ++j) linear(qkv[j], a.ln1.get(), w(kQkvW) + j * C * C, w(kQkvB) + j * C, N, C, C);
  be_.run<VisionRopeForward>(a.q.get(), a.q.get(), coords_.get(), N, H, D, cfg_.theta);
  be_.run<VisionRopeForward>(a.k.get(), a.k.get(), coords_.get(), N, H, D, cfg_.theta);
  a.attn = written(N * C), a.lse = written(N * H);
  be_.run<AttentionForward>(a.attn.get(), a.lse.get(), a.q.get(), a.k.get(), a.v.get(), attention_shape());
  a.mid = written(N * C);
  linear(a.mid.get(), a.attn.get(), w(kProjW), w(kProjB), N, C, C);
  be_.run<AddInplace>(a.mid.get(), a.in.get(), N * C);
  a.ln2 = written(N * C), a.mean2 = written(N), a.rstd2 = written(N);
  be_.run<LayernormForward>(a.ln2.get(), a.mean2.get(), a.rstd2.get(), a.mid.get(), w(kN2W), w(kN2B), N, C, cfg_.eps);
  a.fc1 = written(N * I), a.act = written(N * I);
  linear(a.fc1.get(), a.ln2.get(), w(kFc1W), w(kFc1B), N, C, I);
  be_.run<GeluForward>(a.act.get(), a.fc1.get(), N * I, cpu::GeluKind::kTanh);
  a.out = written(N * C);
  linear(a.out.get(), a.act.get(), w(kFc2W), w(kFc2B), N, I, C);
  be_.run<AddInplace>(a.out.get(), a.mid.get(), N * C);
}

void VisionTower::merger_forward(MergerActs& a, size_t first, bool postshuffle, const float* x) {
  const int64_t C = cfg_.hidden, K = cfg_.merged_dim(), M = tokens();
  auto w = [&](size_t k) { return p(first + k); };
  a.in = copy_of(x, N_ * C);
  // The 2x2 shuffle is a view: merge^2 consecutive patch rows of C are one row of K.
  const int64_t rows = postshuffle ? M : N_, dim = postshuffle ? K : C;
  a.ln = written(N_ * C), a.mean = written(rows), a.rstd = written(rows);
  be_.run<LayernormForward>(a.ln.get(), a.mean.get(), a.rstd.get(), a.in.get(), w(kNormW), w(kNormB), rows, dim,
                            cfg_.eps);
  a.fc1 = written(M * K), a.act = written(M * K);
  linear(a.fc1.get(), a.ln.get(), w(kMFc1W), w(kMFc1B), M, K, K);
  be_.run<GeluForward>(a.act.get(), a.fc1.get(), M * K, cpu::GeluKind::kErf);
  a.out = written(M * cfg_.out_hidden);
  linear(a.out.get(), a.act.get(), w(kMFc2W), w(kMFc2B), M, K, cfg_.out_hidden);
  if (!for_backward_) {
    Buf out = std::move(a.out);
    a = MergerActs{};
    a.out = std::move(out);
  }
}

void VisionTower::backward(const std::vector<float*>& g, const float* d_merged,
                           const std::vector<const float*>& d_deepstack) {
  if (!for_backward_) throw std::logic_error("VisionTower::backward: the tower ran forward for inference only");
  const int64_t C = cfg_.hidden;
  Buf dx = zeros(N_ * C);
  if (d_merged) merger_backward(merger_, merger_first(cfg_), false, d_merged, dx.get(), g);
  for (int64_t i = cfg_.depth - 1; i >= 0; --i) {
    const int64_t j = deepstack_slot(cfg_, i);
    if (j >= 0 && j < static_cast<int64_t>(d_deepstack.size()) && d_deepstack[j])
      merger_backward(deepstack_[j], deepstack_first(cfg_, j), true, d_deepstack[j], dx.get(), g);
    if (recompute_) block_forward(static_cast<size_t>(i), blocks_[i].in.get());
    block_backward(static_cast<size_t>(i), dx, g);
    if (recompute_) release_block(static_cast<size_t>(i), true);
  }
  // dx is now the gradient of patch embedding + position embedding.
  linear_back(nullptr, g[kPatchW], g[kPatchB], dx.get(), pixels_.get(), p(kPatchW), N_, cfg_.patch_inputs(), C);
  be_.run<VisionPosEmbedBackward>(g[kPosTable], dx.get(), grids_, cfg_.merge, cfg_.side, C);
}

// dx: the gradient of the block's output in, of its input out.
void VisionTower::block_backward(size_t i, Buf& dx, const std::vector<float*>& g) {
  BlockActs& a = blocks_[i];
  const int64_t N = N_, C = cfg_.hidden, I = cfg_.intermediate, H = cfg_.heads, D = cfg_.head_dim();
  auto w = [&](size_t k) { return p(block_param(i, k)); };
  auto gw = [&](size_t k) { return g[block_param(i, k)]; };
  // out = mid + fc2(gelu(fc1(ln2(mid)))): dx flows to mid directly and through the MLP.
  Buf d_act = zeros(N * I), d_fc1 = zeros(N * I), d_ln2 = zeros(N * C);
  linear_back(d_act.get(), gw(kFc2W), gw(kFc2B), dx.get(), a.act.get(), w(kFc2W), N, I, C);
  be_.run<GeluBackward>(d_fc1.get(), d_act.get(), a.fc1.get(), N * I, cpu::GeluKind::kTanh);
  linear_back(d_ln2.get(), gw(kFc1W), gw(kFc1B), d_fc1.get(), a.ln2.get(), w(kFc1W), N, C, I);
  Buf d_mid = copy_of(dx.get(), N * C);
  be_.run<LayernormBackward>(d_mid.get(), gw(kN2W), gw(kN2B), d_ln2.get(), a.mid.get(), w(kN2W), a.mean2.get(),
                             a.rstd2.get(), N, C);
  // mid = in + proj(attention(rope(q), rope(k), v)), q|k|v = qkv(ln1(in)).
  Buf d_attn = zeros(N * C);
  linear_back(d_attn.get(), gw(kProjW), gw(kProjB), d_mid.get(), a.attn.get(), w(kProjW), N, C, C);
  Buf dq = zeros(N * C), dk = zeros(N * C), dv = zeros(N * C);
  be_.run<AttentionBackward>(dq.get(), dk.get(), dv.get(), d_attn.get(), a.attn.get(), a.lse.get(), a.q.get(),
                             a.k.get(), a.v.get(), attention_shape());
  Buf dq_pre = zeros(N * C), dk_pre = zeros(N * C);
  be_.run<VisionRopeBackward>(dq_pre.get(), dq.get(), coords_.get(), N, H, D, cfg_.theta);
  be_.run<VisionRopeBackward>(dk_pre.get(), dk.get(), coords_.get(), N, H, D, cfg_.theta);
  Buf d_ln1 = zeros(N * C);
  const float* d_qkv[] = {dq_pre.get(), dk_pre.get(), dv.get()};
  for (int64_t j = 0; j < 3; ++j)
    linear_back(d_ln1.get(), gw(kQkvW) + j * C * C, gw(kQkvB) + j * C, d_qkv[j], a.ln1.get(), w(kQkvW) + j * C * C, N,
                C, C);
  be_.run<LayernormBackward>(d_mid.get(), gw(kN1W), gw(kN1B), d_ln1.get(), a.in.get(), w(kN1W), a.mean1.get(),
                             a.rstd1.get(), N, C);
  dx = std::move(d_mid);
}

void VisionTower::merger_backward(MergerActs& a, size_t first, bool postshuffle, const float* dout, float* dx,
                                  const std::vector<float*>& g) {
  const int64_t C = cfg_.hidden, K = cfg_.merged_dim(), M = tokens();
  auto w = [&](size_t k) { return p(first + k); };
  Buf d_act = zeros(M * K), d_fc1 = zeros(M * K), d_ln = zeros(M * K);
  linear_back(d_act.get(), g[first + kMFc2W], g[first + kMFc2B], dout, a.act.get(), w(kMFc2W), M, K, cfg_.out_hidden);
  be_.run<GeluBackward>(d_fc1.get(), d_act.get(), a.fc1.get(), M * K, cpu::GeluKind::kErf);
  linear_back(d_ln.get(), g[first + kMFc1W], g[first + kMFc1B], d_fc1.get(), a.ln.get(), w(kMFc1W), M, K, K);
  const int64_t rows = postshuffle ? M : N_, dim = postshuffle ? K : C;
  be_.run<LayernormBackward>(dx, g[first + kNormW], g[first + kNormB], d_ln.get(), a.in.get(), w(kNormW), a.mean.get(),
                             a.rstd.get(), rows, dim);
}

}  // namespace medix
