#include "qwen3.h"
#include "qwen3_full_shard.h"
#include "qwen3_internal.h"

#include <cmath>
#include <cstring>

#include "../core/error.h"
#include "../core/rng.h"
#include "../ops/embedding.h"
#include "../ops/logprob.h"
#include "../ops/residual.h"
#include "../ops/rmsnorm.h"
#include "../ops/swiglu.h"

namespace medix {

// ---------------------------------------------------------------------------------------------
// Config and parameters

void Qwen3Config::validate() const {
  auto positive = [](int64_t v, const char* field) {
    MEDIX_CHECK(v > 0, "Qwen3 config: ", field, " must be > 0, got ", v);
  };
  positive(vocab, "vocab_size");
  positive(hidden, "hidden_size");
  positive(intermediate, "intermediate_size");
  positive(layers, "num_hidden_layers");
  positive(heads, "num_attention_heads");
  positive(kv_heads, "num_key_value_heads");
  positive(head_dim, "head_dim");
  MEDIX_CHECK(heads % kv_heads == 0, "Qwen3 config: num_attention_heads (", heads,
              ") must be a multiple of num_key_value_heads (", kv_heads, ")");
  MEDIX_CHECK(head_dim % 2 == 0, "Qwen3 config: head_dim must be even for rotary embeddings, got ", head_dim);
  MEDIX_CHECK(vocab < (int64_t(1) << 31), "Qwen3 config: vocab_size too large: ", vocab);
  MEDIX_CHECK(rope_theta > 0 && std::isfinite(rope_theta), "Qwen3 config: rope_theta must be > 0");
  MEDIX_CHECK(rms_eps > 0 && std::isfinite(rms_eps), "Qwen3 config: rms_norm_eps must be > 0");
  if (!mrope_section.empty()) {
    MEDIX_CHECK(mrope_section.size() == 3, "Qwen3 config: mrope_section must have 3 entries, got ",
                mrope_section.size());
    int64_t sum = 0;
    for (int64_t s : mrope_section) sum += s;
    MEDIX_CHECK(sum == head_dim / 2, "Qwen3 config: mrope_section must sum to head_dim/2 = ", head_dim / 2, ", got ",
                sum);
  }
  if (vision) validate_vision();
  if (experts > 0) {
    MEDIX_CHECK(experts_per_token > 0 && experts_per_token <= experts, "Qwen3 config: num_experts_per_tok must be in ",
                "[1, num_experts = ", experts, "], got ", experts_per_token);
    positive(moe_intermediate, "moe_intermediate_size");
    positive(decoder_sparse_step, "decoder_sparse_step");
    for (int64_t l : mlp_only_layers)
      MEDIX_CHECK(l >= 0 && l < layers, "Qwen3 config: mlp_only_layers holds ", l, ", not a layer index in [0, ",
                  layers, ")");
  }
}

bool Qwen3Config::is_sparse(int64_t layer) const {
  if (experts <= 0 || (layer + 1) % decoder_sparse_step != 0) return false;
  for (int64_t l : mlp_only_layers)
    if (l == layer) return false;
  return true;
}

int64_t Qwen3Config::sparse_layers() const {
  int64_t n = 0;
  for (int64_t l = 0; l < layers; ++l) n += is_sparse(l);
  return n;
}

namespace {

// Layer l's tensor list, in Hugging Face names and shapes (transformers 5's in-memory names, with
// a sparse layer's experts fused); the flat layout follows it. Both kinds of layer have kLayerTensors.
std::vector<std::pair<std::string, std::vector<int64_t>>> layer_tensors(const Qwen3Config& c, int64_t l) {
  const int64_t qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim;
  std::vector<std::pair<std::string, std::vector<int64_t>>> mlp;
  if (c.is_sparse(l))
    mlp = {{"mlp.gate.weight", {c.experts, c.hidden}},
           {"mlp.experts.gate_up_proj", {c.experts, 2 * c.moe_intermediate, c.hidden}},
           {"mlp.experts.down_proj", {c.experts, c.hidden, c.moe_intermediate}}};
  else
    mlp = {{"mlp.gate_proj.weight", {c.intermediate, c.hidden}},
           {"mlp.up_proj.weight", {c.intermediate, c.hidden}},
           {"mlp.down_proj.weight", {c.hidden, c.intermediate}}};
  std::vector<std::pair<std::string, std::vector<int64_t>>> all = {
      {"input_layernorm.weight", {c.hidden}},       {"self_attn.q_proj.weight", {qd, c.hidden}},
      {"self_attn.k_proj.weight", {kvd, c.hidden}}, {"self_attn.v_proj.weight", {kvd, c.hidden}},
      {"self_attn.o_proj.weight", {c.hidden, qd}},  {"self_attn.q_norm.weight", {c.head_dim}},
      {"self_attn.k_norm.weight", {c.head_dim}},    {"post_attention_layernorm.weight", {c.hidden}},
  };
  all.insert(all.end(), mlp.begin(), mlp.end());
  return all;
}

int64_t numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

bool is_norm(const std::string& name) { return name.find("norm.weight") != std::string::npos; }

}  // namespace

struct Qwen3Model::Workspace : BufferArena {
  int64_t capacity = 0;
  bool training = false;
  std::vector<float*> stream;  // residual stream at each layer boundary: L+1 of [T, hidden]
  std::vector<Acts> acts;
  float *tmp_h, *final_rstd, *final_xn, *head_lse, *logp, *entropy;
  int32_t *head_rows, *head_targets;  // the rows with a target, and their targets (head_forward)
  // backward scratch
  float *dh, *dxn, *dattn, *dq, *dq2, *dk, *dk2, *dv, *dgate, *dup, *dact, *dlogp, *dentropy;
  int32_t *tokens, *targets, *positions, *cu;

  explicit Workspace(Backend& b) : BufferArena(b) {}
};

BufferArena::~BufferArena() {
  for (void* p : blocks) be.release(p);
}
float* BufferArena::f(int64_t n) {
  void* p = be.alloc(sizeof(float) * std::max<int64_t>(n, 1));
  blocks.push_back(p);
  bytes += sizeof(float) * n;
  return static_cast<float*>(p);
}
int32_t* BufferArena::i(int64_t n) {
  void* p = be.alloc(sizeof(int32_t) * std::max<int64_t>(n, 1));
  blocks.push_back(p);
  return static_cast<int32_t*>(p);
}

Qwen3Model::Acts Qwen3Model::alloc_acts(BufferArena& arena, int64_t cap, bool with_lse) const {
  const Qwen3Config& c = cfg_;
  const int64_t H = c.hidden, qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim, I = c.intermediate;
  Acts a;
  a.rstd1 = arena.f(cap);
  a.xn1 = arena.f(cap * H);
  a.q_pre = arena.f(cap * qd);
  a.q_rstd = arena.f(cap * c.heads);
  a.q = arena.f(cap * qd);
  a.k_pre = arena.f(cap * kvd);
  a.k_rstd = arena.f(cap * c.kv_heads);
  a.k = arena.f(cap * kvd);
  a.v = arena.f(cap * kvd);
  a.attn = arena.f(cap * qd);
  a.lse = with_lse ? arena.f(cap * c.heads) : nullptr;
  a.h_mid = arena.f(cap * H);
  a.rstd2 = arena.f(cap);
  a.xn2 = arena.f(cap * H);
  a.gate = arena.f(cap * I);
  a.up = arena.f(cap * I);
  a.act = arena.f(cap * I);
  const bool moe = c.experts > 0;
  const int64_t E = c.experts, K = c.experts_per_token, MI = c.moe_intermediate;
  a.router_logits = moe ? arena.f(cap * E) : nullptr;
  a.probs = moe ? arena.f(cap * E) : nullptr;
  a.route_w = moe ? arena.f(cap * K) : nullptr;
  a.moe_gate = moe ? arena.f(cap * K * MI) : nullptr;
  a.moe_up = moe ? arena.f(cap * K * MI) : nullptr;
  a.moe_y = moe ? arena.f(cap * K * H) : nullptr;
  a.moe_dw = moe ? arena.f(cap * K) : nullptr;
  a.moe_dlogits = moe ? arena.f(cap * E) : nullptr;
  a.route_experts = moe ? arena.i(cap * K) : nullptr;
  a.route_order = moe ? arena.i(cap * K) : nullptr;
  a.route_offsets = moe ? arena.i(E + 1) : nullptr;
  return a;
}

namespace {

// Float counts of one layer's activations for T tokens (mirrors Acts).
int64_t acts_floats(const Qwen3Config& c, int64_t T) {
  const int64_t qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim;
  return T * (1 + c.hidden + qd + c.heads + qd + kvd + c.kv_heads + kvd + kvd + qd + c.heads + c.hidden + 1 + c.hidden +
              3 * c.intermediate) +
         (c.experts > 0 ? T * (4 * c.experts + 2 * c.experts_per_token * (1 + c.moe_intermediate + c.hidden)) : 0);
}

int64_t scratch_floats(const Qwen3Config& c, int64_t T) {
  const int64_t qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim;
  return T * (2 * c.hidden + qd + 2 * qd + 2 * kvd + kvd + 3 * c.intermediate + 2);
}

}  // namespace

Qwen3Model::Qwen3Model(const Qwen3Config& cfg, Backend& backend, uint64_t seed, float init_std)
    : cfg_(cfg), be_(backend) {
  cfg_.validate();
  const std::string& pre = cfg_.prefix;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    ParamInfo p{name, std::move(shape), n_params_, 0};
    p.numel = numel(p.shape);
    n_params_ += p.numel;
    params_.push_back(std::move(p));
  };
  add(pre + "embed_tokens.weight", {cfg_.vocab, cfg_.hidden});
  for (int64_t l = 0; l < cfg_.layers; ++l)
    for (auto& [name, shape] : layer_tensors(cfg_, l)) add(pre + "layers." + std::to_string(l) + "." + name, shape);
  add(pre + "norm.weight", {cfg_.hidden});
  // Qwen3-VL: the vision tower's tensors sit between the final norm and lm_head, so both keep their
  // indices (params_[final_norm_tensor()] and params_.back()).
  vision_first_ = params_.size();
  if (cfg_.vision)
    for (const VisionParam& v : vision_parameters(*cfg_.vision)) add("model.visual." + v.name, v.shape);
  if (!cfg_.tie_embeddings) add("lm_head.weight", {cfg_.vocab, cfg_.hidden});

  shards_ = {Shard{0, static_cast<int64_t>(params_.size()), 0, n_params_}};  // one process owns all

  if (!cfg_.mrope_section.empty())
    freq_component_ = rope_section_map(cfg_.head_dim, cfg_.mrope_section, cfg_.mrope_interleaved);

  // Hugging Face's initialisation: normal(0, initializer_range) for matrices, ones for norms.
  // Each tensor draws from its own counter stream, so values do not depend on tensor order.
  weights_ = static_cast<float*>(be_.alloc(sizeof(float) * n_params_));
  std::vector<float> host;
  for (size_t t = 0; t < params_.size(); ++t) {
    const ParamInfo& p = params_[t];
    host.assign(p.numel, 1.0f);
    if (!is_norm(p.name)) {
      const uint64_t stream = splitmix64(seed ^ splitmix64(t + 1));
      for (int64_t i = 0; i < p.numel; ++i) host[i] = init_std * normal01(stream, i);
    }
    be_.from_host(weights_ + p.offset, host.data(), sizeof(float) * p.numel);
  }
}

Qwen3Model::~Qwen3Model() {
  ws_.reset();
  // Fully sharded, the layouts belong to fsdp_.
  if (fsdp_) weights_ = grads_ = nullptr;
  for (float* p : {weights_, grads_, adam_m_, adam_v_})
    if (p) be_.release(p);
  if (compute_) be_.release(compute_);
}

const ParamInfo& Qwen3Model::param(const std::string& name) const {
  for (const auto& p : params_)
    if (p.name == name) return p;
  fail("unknown parameter '", name, "' (the model has ", params_.size(), " tensors, e.g. '", params_[0].name, "')");
}

void Qwen3Model::get_param(const ParamInfo& p, float* host) const {
  require_whole_weights("get_param");
  be_.to_host(host, weights_ + p.offset, sizeof(float) * p.numel);
}
void Qwen3Model::set_param(const ParamInfo& p, const float* host) {
  if (fsdp_) set_owned_weights(p, host);
  if (!fsdp_ || fsdp_->pinned) be_.from_host(weights_ + p.offset, host, sizeof(float) * p.numel);
  compute_stale_ = true;
  have_training_forward_ = false;  // saved activations no longer match the parameters
}
void Qwen3Model::set_data_parallel(Communicator& comm, Communicator& scalars) {
  MEDIX_CHECK(scalars.size() == comm.size() && scalars.rank() == comm.rank(),
              "set_data_parallel: the two communicators differ in ranks");
  MEDIX_CHECK(!adam_m_, "set_data_parallel: the optimizer state already exists; call it before the first step ",
              "and before restoring a checkpoint's optimizer state");
  std::vector<int64_t> numels;
  for (const auto& p : params_) numels.push_back(p.numel);
  shards_ = partition_tensors(numels, comm.size());
  rank_ = comm.rank();
  comm_ = comm.size() > 1 ? &comm : nullptr;
  scalars_ = comm.size() > 1 ? &scalars : nullptr;
}

void Qwen3Model::get_optimizer_state(float* m, float* v) const {
  const size_t bytes = sizeof(float) * optimizer_floats();
  if (!adam_m_) {
    std::memset(m, 0, bytes);
    std::memset(v, 0, bytes);
    return;
  }
  be_.to_host(m, adam_m_, bytes);
  be_.to_host(v, adam_v_, bytes);
}
void Qwen3Model::set_optimizer_state(const float* m, const float* v, int64_t step) {
  if (step < 0) throw Error("set_optimizer_state: step must be >= 0, got " + std::to_string(step));
  const size_t bytes = sizeof(float) * optimizer_floats();
  if (!adam_m_) {
    adam_m_ = static_cast<float*>(be_.alloc(bytes));
    adam_v_ = static_cast<float*>(be_.alloc(bytes));
  }
  be_.from_host(adam_m_, m, bytes);
  be_.from_host(adam_v_, v, bytes);
  step_ = step;
}
void Qwen3Model::get_grad(const ParamInfo& p, float* host) const {
  MEDIX_CHECK(!fsdp_, "get_grad(", p.name, "): the model is fully sharded (each rank keeps a shard of the gradients)");
  if (!grads_) {
    std::memset(host, 0, sizeof(float) * p.numel);
    return;
  }
  be_.to_host(host, grads_ + p.offset, sizeof(float) * p.numel);
}

Qwen3Model::Layer Qwen3Model::layer_view(float* base, int64_t i) const {
  // Layer tensors follow the embedding in layer_tensors() order.
  static_assert(sizeof(Layer) == kLayerTensors * sizeof(float*), "Layer holds one pointer per layer tensor");
  const size_t first = 1 + static_cast<size_t>(i) * kLayerTensors;
  auto at = [&](size_t k) { return base + params_[first + k].offset; };
  return Layer{at(0), at(1), at(2), at(3), at(4), at(5), at(6), at(7), at(8), at(9), at(10)};
}

void Qwen3Model::set_recompute(bool on) {
  if (on != recompute_) {
    recompute_ = on;
    ws_.reset();
    have_training_forward_ = false;
  }
}

ActivationPlan Qwen3Model::plan(int64_t T, bool training, int64_t image_patches) const {
  ActivationPlan p;
  p.tokens = T;
  p.recompute = recompute_;
  const int64_t n_acts = (training && !recompute_) ? cfg_.layers : 1;
  p.per_layer_bytes = sizeof(float) * acts_floats(cfg_, T);
  p.stream_bytes = sizeof(float) * (cfg_.layers + 1) * T * cfg_.hidden;
  p.scratch_bytes = training ? sizeof(float) * scratch_floats(cfg_, T) : 0;
  const size_t head = sizeof(float) * T * (cfg_.hidden * 2 + 1 + 3);
  MEDIX_CHECK(image_patches == 0 || cfg_.vision,
              "activationPlan: image patches given but the model has no vision tower");
  if (image_patches > 0)
    p.vision_bytes =
        VisionTower::activation_bytes(*cfg_.vision, image_patches, tower_for_backward(training), recompute_);
  p.total_bytes = p.per_layer_bytes * n_acts + p.stream_bytes + p.scratch_bytes + head + p.vision_bytes;
  return p;
}

void Qwen3Model::ensure_workspace(int64_t T, bool training) {
  if (ws_ && ws_->capacity >= T && (ws_->training || !training)) return;
  ws_.reset();  // free first: never hold two workspaces
  auto ws = std::make_unique<Workspace>(be_);
  const int64_t cap = std::max<int64_t>(T, 1);
  ws->capacity = cap;
  ws->training = training;
  const Qwen3Config& c = cfg_;
  const int64_t H = c.hidden, qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim, I = c.intermediate;
  for (int64_t l = 0; l <= c.layers; ++l) ws->stream.push_back(ws->f(cap * H));
  const int64_t n_acts = (training && !recompute_) ? c.layers : 1;
  for (int64_t l = 0; l < n_acts; ++l) ws->acts.push_back(alloc_acts(*ws, cap, true));
  ws->tmp_h = ws->f(cap * H);
  ws->final_rstd = ws->f(cap);
  ws->final_xn = ws->f(cap * H);
  ws->head_lse = ws->f(cap);
  ws->logp = ws->f(cap);
  ws->entropy = ws->f(cap);
  if (training) {
    ws->dh = ws->f(cap * H);
    ws->dxn = ws->f(cap * H);
    ws->dattn = ws->f(cap * qd);
    ws->dq = ws->f(cap * qd);
    ws->dq2 = ws->f(cap * qd);
    ws->dk = ws->f(cap * kvd);
    ws->dk2 = ws->f(cap * kvd);
    ws->dv = ws->f(cap * kvd);
    ws->dgate = ws->f(cap * I);
    ws->dup = ws->f(cap * I);
    ws->dact = ws->f(cap * I);
    ws->dlogp = ws->f(cap);
    ws->dentropy = ws->f(cap);
  }
  ws->tokens = ws->i(cap);
  ws->targets = ws->i(cap);
  ws->head_rows = ws->i(cap);
  ws->head_targets = ws->i(cap);
  ws->positions = ws->i(3 * cap);
  ws->cu = ws->i(cap + 1);
  ws_ = std::move(ws);
}

// ---------------------------------------------------------------------------------------------
// Forward

AttentionShape Qwen3Model::attention_shape(int64_t T) const {
  AttentionShape s;
  s.T = T;
  s.n_heads = cfg_.heads;
  s.n_kv_heads = cfg_.kv_heads;
  s.head_dim = cfg_.head_dim;
  s.cu_seqlens = ws_->cu;
  s.n_seqs = static_cast<int64_t>(cu_.size()) - 1;
  s.scale = 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim));
  s.cu_seqlens_host = cu_.data();
  s.bf16_operands = dtype_ == ComputeDType::bf16;
  return s;
}

RopeSpec Qwen3Model::rope_spec() const {
  return RopeSpec{cfg_.head_dim, cfg_.rope_theta, cfg_.position_components(),
                  freq_component_.empty() ? nullptr : freq_component_.data()};
}

void Qwen3Model::qkv_forward(int64_t l, const float* x_in, Acts& a, const int32_t* positions, int64_t T) {
  const Qwen3Config& c = cfg_;
  const int64_t H = c.hidden, qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim;
  const Layer w = layer_view(weights_, l);
  const RopeSpec rope = rope_spec();
  // q, k, v = rope(qk_norm(proj(rmsnorm(x_in)))) (v has neither norm nor rope)
  be_.run<RmsnormForward>(a.xn1, a.rstd1, x_in, w.in_norm, T, H, c.rms_eps);
  linear(a.q_pre, a.xn1, w.q, T, H, qd);
  linear(a.k_pre, a.xn1, w.k, T, H, kvd);
  linear(a.v, a.xn1, w.v, T, H, kvd);
  be_.run<RmsnormForward>(a.q, a.q_rstd, a.q_pre, w.q_norm, T * c.heads, c.head_dim, c.rms_eps);
  be_.run<RmsnormForward>(a.k, a.k_rstd, a.k_pre, w.k_norm, T * c.kv_heads, c.head_dim, c.rms_eps);
  be_.run<RopeForward>(a.q, a.q, positions, T, c.heads, rope);
  be_.run<RopeForward>(a.k, a.k, positions, T, c.kv_heads, rope);
}

void Qwen3Model::output_mlp_forward(int64_t l, const float* x_in, float* x_out, Acts& a, float* tmp, int64_t T) {
  const Qwen3Config& c = cfg_;
  const int64_t H = c.hidden, qd = c.heads * c.head_dim, I = c.intermediate;
  const Layer w = layer_view(weights_, l);
  // x_mid = x_in + o_proj(attn)
  linear(tmp, a.attn, w.o, T, qd, H);
  be_.run<AddForward>(a.h_mid, x_in, tmp, T * H);
  // MLP block: x_out = x_mid + down(silu(gate(n)) * up(n)), n = rmsnorm(x_mid), or the sparse block
  be_.run<RmsnormForward>(a.xn2, a.rstd2, a.h_mid, w.post_norm, T, H, c.rms_eps);
  if (c.is_sparse(l)) {
    moe_mlp_forward(l, a, tmp, T);
    be_.run<AddForward>(x_out, a.h_mid, tmp, T * H);
    return;
  }
  linear(a.gate, a.xn2, w.gate, T, H, I);
  linear(a.up, a.xn2, w.up, T, H, I);
  be_.run<SwigluForward>(a.act, a.gate, a.up, T * I);
  linear(tmp, a.act, w.down, T, I, H);
  be_.run<AddForward>(x_out, a.h_mid, tmp, T * H);
}

void Qwen3Model::layer_forward(int64_t l, const float* x_in, float* x_out, Acts& a) {
  Workspace& ws = *ws_;
  const int64_t T = static_cast<int64_t>(tokens_.size());
  const AttentionShape att = attention_shape(T);
  qkv_forward(l, x_in, a, ws.positions, T);
  be_.run<AttentionForward>(a.attn, a.lse, a.q, a.k, a.v, att);
  output_mlp_forward(l, x_in, x_out, a, ws.tmp_h, T);
}

void Qwen3Model::forward(const PackedBatch& b, const ForwardOptions& o, float* logp, float* entropy, float* logits) {
  const Qwen3Config& c = cfg_;
  const int64_t T = b.T;
  MEDIX_CHECK(o.temperature > 0 && std::isfinite(o.temperature), "forward: temperature must be > 0");
  have_training_forward_ = false;
  release_unit_weights();  // what a pass that threw left in place
  tower_.reset();          // a training forward's tower with no backward since: freed before the workspace grows
  ensure_workspace(T, o.training);
  Workspace& ws = *ws_;

  // Keep host copies of the batch for backward and copy it into backend memory.
  tokens_.assign(b.tokens, b.tokens + T);
  cu_.assign(b.cu_seqlens, b.cu_seqlens + b.n_seqs + 1);
  targets_.assign(b.targets, b.targets + T);
  const int P = c.position_components();
  positions_.resize(static_cast<size_t>(P) * T);
  if (b.positions) {
    std::memcpy(positions_.data(), b.positions, sizeof(int32_t) * P * T);
  } else {
    for (int64_t s = 0; s < b.n_seqs; ++s)
      for (int32_t t = cu_[s]; t < cu_[s + 1]; ++t)
        for (int p = 0; p < P; ++p) positions_[p * T + t] = t - cu_[s];
  }
  be_.from_host(ws.tokens, tokens_.data(), sizeof(int32_t) * T);
  be_.from_host(ws.targets, targets_.data(), sizeof(int32_t) * T);
  be_.from_host(ws.positions, positions_.data(), sizeof(int32_t) * P * T);
  be_.from_host(ws.cu, cu_.data(), sizeof(int32_t) * cu_.size());

  unit_gather(0);
  const float* embed = weights_ + params_[0].offset;
  be_.run<EmbeddingForward>(ws.stream[0], ws.tokens, embed, T, c.hidden);
  if (head_unit() != 0) unit_release(0);
  // Fully sharded, every rank must make the same collectives: a Qwen3-VL model gathers its tower's units
  // in every forward, images in this rank's batch or not (without sharding this gathers nothing).
  if (cfg_.vision) vision_units(true);
  visual_forward(b, ws.stream[0], o.training);
  vision_units(false);
  const bool per_layer = o.training && !recompute_;
  moe_counts_.assign(c.experts > 0 ? b.n_seqs * c.experts : 0, 0.0);
  moe_prob_sums_.assign(moe_counts_.size(), 0.0);
  moe_load_.assign(c.sparse_layers() * c.experts, 0);
  moe_router_logits_.assign(o.logits ? c.sparse_layers() * T * c.experts : 0, 0.0f);
  for (int64_t l = 0; l < c.layers; ++l) {
    Acts& a = ws.acts[per_layer ? l : 0];
    unit_gather(1 + l);
    if (l + 1 < c.layers) unit_prefetch(2 + l);  // the next layer's gather beside this one's compute
    layer_forward(l, ws.stream[l], ws.stream[l + 1], a);
    unit_release(1 + l);
    if (c.is_sparse(l)) moe_record(l, a, o.logits);
    deepstack_forward(l, ws.stream[l + 1]);
  }

  unit_gather(norm_unit());
  unit_gather(head_unit());
  const float* final_norm = weights_ + params_[final_norm_tensor()].offset;
  be_.run<RmsnormForward>(ws.final_xn, ws.final_rstd, ws.stream[c.layers], final_norm, T, c.hidden, c.rms_eps);
  const float* head = c.tie_embeddings ? embed : weights_ + params_.back().offset;
  head_forward(head, o, logp, entropy);
  if (logits) {
    // Full logits on request only: [T, V] is exactly what the fused head avoids materialising.
    float* full = static_cast<float*>(be_.alloc_uninit(sizeof(float) * T * c.vocab));  // linear writes it all
    linear(full, ws.final_xn, head, T, c.hidden, c.vocab);
    be_.to_host(logits, full, sizeof(float) * T * c.vocab);
    be_.release(full);
    if (o.temperature != 1.0f)
      for (int64_t i = 0; i < T * c.vocab; ++i) logits[i] /= o.temperature;
  }
  unit_release(norm_unit());
  unit_release(head_unit());
  if (!o.training) tower_.reset();  // its outputs are placed and added; no backward reads them
  last_opts_ = o;
  have_training_forward_ = o.training;
}

// ---------------------------------------------------------------------------------------------
// The vocabulary head on the rows that have a target

namespace {

// Host rows [R] <-> the full [T] per-token outputs: 0 for the rows without a target.
void expand_rows(float* full, const std::vector<float>& rows, const std::vector<int32_t>& at, int64_t T) {
  std::fill(full, full + T, 0.0f);
  for (size_t r = 0; r < at.size(); ++r) full[at[r]] = rows[r];
}

std::vector<float> pick_rows(const float* full, const std::vector<int32_t>& at) {
  std::vector<float> rows(at.size());
  for (size_t r = 0; r < at.size(); ++r) rows[r] = full[at[r]];
  return rows;
}

}  // namespace

// The fused head (log-probs, entropy) runs on the final hidden rows that have a target only, gathered
// into tmp_h (free after the last layer) with the embedding gather; rows without one get log-prob and
// entropy 0. When every row has a target the gather is skipped and the head reads final_xn directly.
void Qwen3Model::head_forward(const float* head, const ForwardOptions& o, float* logp, float* entropy) {
  const Qwen3Config& c = cfg_;
  Workspace& ws = *ws_;
  const int64_t T = static_cast<int64_t>(targets_.size());
  head_rows_.clear();
  std::vector<int32_t> row_targets;
  for (int64_t t = 0; t < T; ++t)
    if (targets_[t] >= 0) {
      head_rows_.push_back(static_cast<int32_t>(t));
      row_targets.push_back(targets_[t]);
    }
  const int64_t R = static_cast<int64_t>(head_rows_.size());
  std::vector<float> rows(R);
  if (R > 0) {
    be_.from_host(ws.head_rows, head_rows_.data(), sizeof(int32_t) * R);
    be_.from_host(ws.head_targets, row_targets.data(), sizeof(int32_t) * R);
    const float* in = R == T ? ws.final_xn : ws.tmp_h;
    if (R < T) be_.run<EmbeddingForward>(ws.tmp_h, ws.head_rows, ws.final_xn, R, c.hidden);
    be_.run<LogprobForward>(ws.logp, o.entropy || o.training ? ws.entropy : nullptr, ws.head_lse, in, head,
                            ws.head_targets, LogprobShape{R, c.hidden, c.vocab, o.temperature});
    be_.to_host(rows.data(), ws.logp, sizeof(float) * R);
  }
  expand_rows(logp, rows, head_rows_, T);
  if (!entropy) return;
  if (R > 0) be_.to_host(rows.data(), ws.entropy, sizeof(float) * R);
  expand_rows(entropy, rows, head_rows_, T);
}

// Writes d/d final_xn into ws.dxn (zero on the rows without a target) and accumulates dhead. The rows
// are gathered again (tmp_h may have been reused since forward); ws.dh holds their gradient until it
// is scattered, before the final norm's backward overwrites it.
void Qwen3Model::head_backward(const float* head, float* dhead, const float* dlogp, const float* dentropy) {
  const Qwen3Config& c = cfg_;
  Workspace& ws = *ws_;
  const int64_t T = static_cast<int64_t>(targets_.size()), R = static_cast<int64_t>(head_rows_.size());
  be_.zero(ws.dxn, T * c.hidden);
  if (R == 0) return;
  const std::vector<float> g = pick_rows(dlogp, head_rows_);
  be_.from_host(ws.dlogp, g.data(), sizeof(float) * R);
  if (dentropy) {
    const std::vector<float> ge = pick_rows(dentropy, head_rows_);
    be_.from_host(ws.dentropy, ge.data(), sizeof(float) * R);
  }
  const bool all = R == T;
  if (!all) {
    be_.run<EmbeddingForward>(ws.tmp_h, ws.head_rows, ws.final_xn, R, c.hidden);
    be_.zero(ws.dh, R * c.hidden);
  }
  be_.run<LogprobBackward>(all ? ws.dxn : ws.dh, dhead, ws.dlogp, dentropy ? ws.dentropy : nullptr,
                           all ? ws.final_xn : ws.tmp_h, head, ws.head_targets, ws.head_lse,
                           dentropy ? ws.entropy : nullptr, LogprobShape{R, c.hidden, c.vocab, last_opts_.temperature});
  if (!all) be_.run<EmbeddingBackward>(ws.dxn, ws.dh, ws.head_rows, R, c.hidden);
}

// ---------------------------------------------------------------------------------------------
// Backward

void Qwen3Model::layer_backward(int64_t l, float* dh, Acts& a) {
  const Qwen3Config& c = cfg_;
  Workspace& ws = *ws_;
  const int64_t T = static_cast<int64_t>(tokens_.size());
  const int64_t H = c.hidden, qd = c.heads * c.head_dim, kvd = c.kv_heads * c.head_dim, I = c.intermediate;
  const Layer w = layer_view(weights_, l);
  const Layer g = layer_view(grads_, l);
  const float* x_in = ws.stream[l];
  const RopeSpec rope = rope_spec();
  const AttentionShape att = attention_shape(T);

  // dh holds d(x_out). MLP block: x_out = h_mid + down(act); the residual passes dh to h_mid as is.
  be_.zero(ws.dxn, T * H);
  if (c.is_sparse(l)) {
    moe_mlp_backward(l, dh, ws.dxn, a, T);
  } else {
    be_.zero(ws.dact, T * I);
    linear_back(ws.dact, g.down, dh, a.act, w.down, T, I, H);
    be_.zero(ws.dgate, T * I);
    be_.zero(ws.dup, T * I);
    be_.run<SwigluBackward>(ws.dgate, ws.dup, ws.dact, a.gate, a.up, T * I);
    linear_back(ws.dxn, g.gate, ws.dgate, a.xn2, w.gate, T, H, I);
    linear_back(ws.dxn, g.up, ws.dup, a.xn2, w.up, T, H, I);
  }
  be_.run<RmsnormBackward>(dh, g.post_norm, ws.dxn, a.h_mid, w.post_norm, a.rstd2, T, H);
  // dh now holds d(h_mid). Attention block: h_mid = x_in + o_proj(attn).
  be_.zero(ws.dattn, T * qd);
  linear_back(ws.dattn, g.o, dh, a.attn, w.o, T, qd, H);
  be_.zero(ws.dq, T * qd);
  be_.zero(ws.dk, T * kvd);
  be_.zero(ws.dv, T * kvd);
  be_.run<AttentionBackward>(ws.dq, ws.dk, ws.dv, ws.dattn, a.attn, a.lse, a.q, a.k, a.v, att);
  be_.zero(ws.dq2, T * qd);
  be_.zero(ws.dk2, T * kvd);
  be_.run<RopeBackward>(ws.dq2, ws.dq, ws.positions, T, c.heads, rope);
  be_.run<RopeBackward>(ws.dk2, ws.dk, ws.positions, T, c.kv_heads, rope);
  be_.zero(ws.dq, T * qd);
  be_.zero(ws.dk, T * kvd);
  be_.run<RmsnormBackward>(ws.dq, g.q_norm, ws.dq2, a.q_pre, w.q_norm, a.q_rstd, T * c.heads, c.head_dim);
  be_.run<RmsnormBackward>(ws.dk, g.k_norm, ws.dk2, a.k_pre, w.k_norm, a.k_rstd, T * c.kv_heads, c.head_dim);
  be_.zero(ws.dxn, T * H);
  linear_back(ws.dxn, g.q, ws.dq, a.xn1, w.q, T, H, qd);
  linear_back(ws.dxn, g.k, ws.dk, a.xn1, w.k, T, H, kvd);
  linear_back(ws.dxn, g.v, ws.dv, a.xn1, w.v, T, H, kvd);
  be_.run<RmsnormBackward>(dh, g.in_norm, ws.dxn, x_in, w.in_norm, a.rstd1, T, H);
  // dh now holds d(x_in).
}

void Qwen3Model::zero_grad() {
  if (fsdp_) {  // only the shards hold gradients between passes
    be_.zero(fsdp_->g.get(), fsdp_->slice_floats);
    release_unit_grads();  // a backward that threw may have left some in place
    release_unit_weights();
    return;
  }
  if (!grads_) grads_ = static_cast<float*>(be_.alloc(sizeof(float) * n_params_));
  be_.zero(grads_, n_params_);
}

void Qwen3Model::backward(const float* dlogp, int64_t n, const float* dentropy) {
  MEDIX_CHECK(have_training_forward_, "backward: call forward with training: true first (the last forward ",
              "did not keep activations, or parameters/settings changed since)");
  const Qwen3Config& c = cfg_;
  Workspace& ws = *ws_;
  const int64_t T = static_cast<int64_t>(tokens_.size());
  MEDIX_CHECK(n == T, "backward: dlogp has ", n, " entries but the last forward had ", T, " tokens");
  MEDIX_CHECK(visual_rows_.empty() || tower_, "backward: the vision tower's activations of the last forward were ",
              "freed by the backward already run on it; run forward again");
  if (!grads_) zero_grad();
  release_unit_weights();  // what a pass that threw left in place

  unit_gather(head_unit());
  unit_gather(norm_unit());
  unit_grads(head_unit());
  unit_grads(norm_unit());
  const float* embed = weights_ + params_[0].offset;
  const float* head = c.tie_embeddings ? embed : weights_ + params_.back().offset;
  float* dhead = grads_ + (c.tie_embeddings ? params_[0].offset : params_.back().offset);
  head_backward(head, dhead, dlogp, dentropy);
  const ParamInfo& fnorm = params_[final_norm_tensor()];
  be_.zero(ws.dh, T * c.hidden);
  be_.run<RmsnormBackward>(ws.dh, grads_ + fnorm.offset, ws.dxn, ws.stream[c.layers], weights_ + fnorm.offset,
                           ws.final_rstd, T, c.hidden);
  if (head_unit() != 0) {  // a tied head's gradients complete with the embedding's
    unit_reduce_grads(head_unit());
    unit_release(head_unit());
  }
  unit_reduce_grads(norm_unit());
  unit_release(norm_unit());

  for (int64_t l = c.layers - 1; l >= 0; --l) {
    Acts& a = ws.acts[recompute_ ? 0 : l];
    // Gradient checkpointing: rebuild this layer's activations from its saved input (the last
    // layer's are still there from forward). The output goes to a scratch buffer so the saved
    // stream (input of the next layer) stays as it was.
    unit_gather(1 + l);
    if (l > 0) unit_prefetch(l);  // the layer below's gather beside this one's backward
    unit_grads(1 + l);
    if (recompute_ && l != c.layers - 1) layer_forward(l, ws.stream[l], ws.tmp_h, a);
    deepstack_backward(l, ws.dh);
    layer_backward(l, ws.dh, a);
    unit_reduce_grads(1 + l);
    unit_release(1 + l);
  }
  // Fully sharded, every rank reduces the tower's gradients, zeros where its batch had no images.
  const bool tower_grads = !vision_frozen_ && (tower_ || (fsdp_ && cfg_.vision));
  if (tower_grads) {
    vision_units(true);
    for (int64_t u = norm_unit() + 1; fsdp_ && u < static_cast<int64_t>(fsdp_->units.size()); ++u)
      if (u != head_unit()) unit_grads(u);
  }
  visual_backward(ws.dh);
  // The tower's activations (GBs on a GPU for large images) are not kept through the optimizer step and
  // the next rollout: a second backward on this forward refuses above.
  tower_.reset();
  d_deepstack_.clear();
  if (tower_grads)
    for (int64_t u = norm_unit() + 1; fsdp_ && u < static_cast<int64_t>(fsdp_->units.size()); ++u)
      if (u != head_unit()) unit_reduce_grads(u);
  vision_units(false);
  unit_grads(0);
  be_.run<EmbeddingBackward>(grads_ + params_[0].offset, ws.dh, ws.tokens, T, c.hidden);
  unit_reduce_grads(0);
  unit_release(0);
}

// ---------------------------------------------------------------------------------------------
// Optimizer

bool Qwen3Model::clip_and_count_step(float* g, int64_t n, Communicator* scalars, float max_grad_norm, StepResult& r) {
  double sq = be_.run<SumSquares>(g, n);
  if (scalars) scalars->allreduce_sum(&sq, 1, DType::F64);  // the global norm: every rank clips (or skips) alike
  r.grad_norm = std::sqrt(sq);
  if (!std::isfinite(r.grad_norm)) {
    r.skipped = true;
    r.step = step_;
    return false;
  }
  if (max_grad_norm > 0 && r.grad_norm > max_grad_norm)
    be_.run<ScaleInplace>(g, static_cast<float>(max_grad_norm / (r.grad_norm + 1e-6)), n);
  if (!adam_m_) {
    adam_m_ = static_cast<float*>(be_.alloc(sizeof(float) * n));
    adam_v_ = static_cast<float*>(be_.alloc(sizeof(float) * n));
  }
  ++step_;
  return true;
}

StepResult Qwen3Model::optimizer_step(const AdamWConfig& cfg, float max_grad_norm, const std::vector<bool>& decay) {
  MEDIX_CHECK(decay.size() == params_.size(), "optimizer_step: decay mask has ", decay.size(), " entries, expected ",
              params_.size());
  if (fsdp_) return full_shard_step(cfg, max_grad_norm, decay);
  if (!grads_) zero_grad();
  const Shard& own = owned();
  // Each rank's gradient covers its own samples: the owner of each shard receives their sum.
  if (comm_)
    for (int q = 0; q < world_size(); ++q)
      comm_->reduce_sum(grads_ + shards_[q].offset, shards_[q].numel, DType::F32, q);
  StepResult r;
  if (!clip_and_count_step(grads_ + own.offset, own.numel, scalars_, max_grad_norm, r)) return r;
  for (int64_t i = own.first_tensor; i < own.end_tensor; ++i) {
    const ParamInfo& p = params_[i];
    const int64_t at = p.offset - own.offset;
    be_.run<AdamwStep>(weights_ + p.offset, grads_ + p.offset, adam_m_ + at, adam_v_ + at, p.numel, cfg, step_,
                       decay[i]);
  }
  if (comm_)
    for (int o = 0; o < world_size(); ++o)
      comm_->broadcast(weights_ + shards_[o].offset, static_cast<int64_t>(sizeof(float)) * shards_[o].numel, o);
  have_training_forward_ = false;  // the saved activations belong to the old parameters
  compute_stale_ = true;
  r.step = step_;
  return r;
}

}  // namespace medix
