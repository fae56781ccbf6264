// Built by scripts/build-op-conformance.sh (build/op-conformance/device_memory_guard) and run by
// test/core/op-conformance.test.ts, on any CPU machine (no GPU). A "device memory" emulator: backend memory comes from
// one mmap'd arena that is PROT_NONE except while a backend op runs, so any host dereference of backend memory outside
// an op faults (SIGSEGV with the stack in gdb). Every op also checks the Backend contract: pointers that must be
// backend memory are inside the arena (or null), pointers the contract says are host memory are outside it. name() is
// "cuda" so the model refuses what it refuses on CUDA; the attention head_dim limits of kernels/attention.cu are
// enforced too. Ops run the CPU reference.
#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "model/generator.h"
#include "model/kv_cache.h"
#include "model/qwen3.h"
#include "model_params.h"

using namespace medix;

namespace {

class GuardBackend final : public Backend {
 public:
  GuardBackend() {
    cap_ = size_t(8) << 30;
    base_ = static_cast<char*>(mmap(nullptr, cap_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
    if (base_ == MAP_FAILED) abort();
  }
  const char* name() const override { return "cuda"; }

  bool in(const void* p) const {
    auto c = static_cast<const char*>(p);
    return c >= base_ && c < base_ + used_;
  }
  // Inside a live allocation (not one released: the CUDA pool hands released memory out again).
  bool live_at(const void* p) const {
    auto c = static_cast<char*>(const_cast<void*>(p));
    auto it = live_.upper_bound(c);
    if (it == live_.begin()) return false;
    --it;
    return c < it->first + std::max<size_t>(it->second, 1);
  }
  void dev(const void* p, const char* op, const char* arg) const {
    if (p && !in(p)) {
      fprintf(stderr, "CONTRACT: %s: %s is not backend memory (%p)\n", op, arg, p);
      ++violations;
    } else if (p && !live_at(p)) {
      fprintf(stderr, "CONTRACT: %s: %s points into released backend memory (%p)\n", op, arg, p);
      ++violations;
    }
  }
  void host(const void* p, const char* op, const char* arg) const {
    if (p && in(p)) {
      fprintf(stderr, "CONTRACT: %s: %s must be host memory but is backend memory\n", op, arg);
      ++violations;
    }
  }
  void thread_check(const char* op) {
    if (owner_ == std::thread::id()) owner_ = std::this_thread::get_id();
    if (owner_ != std::this_thread::get_id()) {
      fprintf(stderr, "THREAD: %s called from another thread\n", op);
      ++violations;
    }
  }
  struct Open {
    GuardBackend& g;
    explicit Open(GuardBackend& b, const char* op) : g(b) {
      g.thread_check(op);
      ++g.ops;
      mprotect(g.base_, g.cap_, PROT_READ | PROT_WRITE);
    }
    ~Open() { mprotect(g.base_, g.cap_, PROT_NONE); }
  };

  void* alloc(size_t bytes) override {
    Open o(*this, "alloc");
    const size_t page = 4096, n = (bytes + page - 1) / page * page + page;  // a guard page after each
    if (used_ + n > cap_) fail("guard backend: arena full");
    char* p = base_ + used_;
    used_ += n;
    std::memset(p, 0, bytes);
    live_[p] = bytes;
    return p;
  }
  void release(void* p) override {
    if (!p) return;
    if (!live_.erase(static_cast<char*>(p))) {
      fprintf(stderr, "CONTRACT: release of %p, not a live allocation of this backend\n", p);
      ++violations;
    }
  }
  void to_host(void* dst, const void* src, size_t bytes) override {
    host(dst, "to_host", "dst");
    dev(src, "to_host", "src");
    Open o(*this, "to_host");
    std::memcpy(dst, src, bytes);
  }
  void from_host(void* dst, const void* src, size_t bytes) override {
    dev(dst, "from_host", "dst");
    host(src, "from_host", "src");
    Open o(*this, "from_host");
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void zero(float* p, int64_t n) override {
    dev(p, "zero", "p");
    Open o(*this, "zero");
    cpu().zero(p, n);
  }
  void copy(float* d, const float* s, int64_t n) override {
    dev(d, "copy", "dst");
    dev(s, "copy", "src");
    Open o(*this, "copy");
    cpu().copy(d, s, n);
  }
#define D(p) dev(p, __func__, #p)
#define H(p) host(p, __func__, #p)
#define OPEN Open open_(*this, __func__)
  void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim) override {
    D(out), D(ids), D(table);
    OPEN;
    cpu().embedding_forward(out, ids, table, n, dim);
  }
  void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t n, int64_t dim) override {
    D(dtable), D(dout), D(ids);
    OPEN;
    cpu().embedding_backward(dtable, dout, ids, n, dim);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim,
                       float eps) override {
    D(out), D(rstd), D(x), D(w);
    OPEN;
    cpu().rmsnorm_forward(out, rstd, x, w, rows, dim, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                        int64_t rows, int64_t dim) override {
    D(dx), D(dw), D(dout), D(x), D(w), D(rstd);
    OPEN;
    cpu().rmsnorm_backward(dx, dw, dout, x, w, rstd, rows, dim);
  }
  void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in,
                      int64_t out) override {
    D(y), D(x), D(W), D(b);
    OPEN;
    cpu().linear_forward(y, x, W, b, T, in, out);
  }
  void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                       int64_t in, int64_t out) override {
    D(dx), D(dW), D(db), D(dy), D(x), D(W);
    OPEN;
    cpu().linear_backward(dx, dW, db, dy, x, W, T, in, out);
  }
  void linear_forward_bf16(float* y, const float* x, const uint16_t* W, const float* b, int64_t T, int64_t in,
                           int64_t out) override {
    D(y), D(x), D(W), D(b);
    OPEN;
    cpu().linear_forward_bf16(y, x, W, b, T, in, out);
  }
  void linear_backward_bf16(float* dx, float* dW, float* db, const float* dy, const float* x, const uint16_t* W,
                            int64_t T, int64_t in, int64_t out) override {
    D(dx), D(dW), D(db), D(dy), D(x), D(W);
    OPEN;
    cpu().linear_backward_bf16(dx, dW, db, dy, x, W, T, in, out);
  }
  void to_bf16(uint16_t* dst, const float* src, int64_t n) override {
    D(dst), D(src);
    OPEN;
    cpu().to_bf16(dst, src, n);
  }
  void rope_forward(float* out, const float* x, const int32_t* pos, int64_t T, int64_t n_heads,
                    const RopeSpec& spec) override {
    D(out), D(x), D(pos), H(spec.freq_component);
    OPEN;
    cpu().rope_forward(out, x, pos, T, n_heads, spec);
  }
  void rope_backward(float* dx, const float* dout, const int32_t* pos, int64_t T, int64_t n_heads,
                     const RopeSpec& spec) override {
    D(dx), D(dout), D(pos), H(spec.freq_component);
    OPEN;
    cpu().rope_backward(dx, dout, pos, T, n_heads, spec);
  }
  // The GPU attention's head_dim limits, and the host copy of cu_seqlens (when given) must hold the
  // backend array's values (called inside OPEN, where both are readable).
  void attention_check(const AttentionShape& s, const char* fn) {
    MEDIX_CHECK(s.head_dim >= 1 && s.head_dim <= 256, fn, ": head_dim must be in [1, 256] on the GPU, got ",
                s.head_dim);
    if (s.cu_seqlens_host && std::memcmp(s.cu_seqlens_host, s.cu_seqlens, sizeof(int32_t) * (s.n_seqs + 1)) != 0) {
      fprintf(stderr, "CONTRACT: %s: cu_seqlens_host differs from cu_seqlens\n", fn);
      ++violations;
    }
  }
  void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                         const AttentionShape& s) override {
    D(out), D(lse), D(q), D(k), D(v), D(s.cu_seqlens), H(s.cu_seqlens_host);
    OPEN;
    attention_check(s, "cuda attention_forward");
    cpu().attention_forward(out, lse, q, k, v, s);
  }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                          const float* q, const float* k, const float* v, const AttentionShape& s) override {
    D(dq), D(dk), D(dv), D(dout), D(out), D(lse), D(q), D(k), D(v), D(s.cu_seqlens), H(s.cu_seqlens_host);
    OPEN;
    attention_check(s, "cuda attention_backward");
    cpu().attention_backward(dq, dk, dv, dout, out, lse, q, k, v, s);
  }
  void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) override {
    D(out), D(gate), D(up);
    OPEN;
    cpu().swiglu_forward(out, gate, up, n);
  }
  void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                       int64_t n) override {
    D(dgate), D(dup), D(dout), D(gate), D(up);
    OPEN;
    cpu().swiglu_backward(dgate, dup, dout, gate, up, n);
  }
  void add_forward(float* out, const float* a, const float* b, int64_t n) override {
    D(out), D(a), D(b);
    OPEN;
    cpu().add_forward(out, a, b, n);
  }
  void add_inplace(float* dst, const float* src, int64_t n) override {
    D(dst), D(src);
    OPEN;
    cpu().add_inplace(dst, src, n);
  }
  void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                         int64_t rows, int64_t dim, float eps) override {
    D(out), D(mean), D(rstd), D(x), D(w), D(b);
    OPEN;
    cpu().layernorm_forward(out, mean, rstd, x, w, b, rows, dim, eps);
  }
  void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                          const float* mean, const float* rstd, int64_t rows, int64_t dim) override {
    D(dx), D(dw), D(db), D(dout), D(x), D(w), D(mean), D(rstd);
    OPEN;
    cpu().layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, rows, dim);
  }
  void gelu_forward(float* out, const float* x, int64_t n, cpu::GeluKind kind) override {
    D(out), D(x);
    OPEN;
    cpu().gelu_forward(out, x, n, kind);
  }
  void gelu_backward(float* dx, const float* dout, const float* x, int64_t n, cpu::GeluKind kind) override {
    D(dx), D(dout), D(x);
    OPEN;
    cpu().gelu_backward(dx, dout, x, n, kind);
  }
  void vision_rope_forward(float* out, const float* x, const int32_t* coords, int64_t T, int64_t heads, int64_t D_,
                           float theta) override {
    D(out), D(x), D(coords);
    OPEN;
    cpu().vision_rope_forward(out, x, coords, T, heads, D_, theta);
  }
  void vision_rope_backward(float* dx, const float* dout, const int32_t* coords, int64_t T, int64_t heads, int64_t D_,
                            float theta) override {
    D(dx), D(dout), D(coords);
    OPEN;
    cpu().vision_rope_backward(dx, dout, coords, T, heads, D_, theta);
  }
  void vision_pos_embed_forward(float* out, const float* table, const std::vector<ImageGrid>& grids, int64_t merge,
                                int64_t side, int64_t dim) override {
    D(out), D(table);
    OPEN;
    cpu().vision_pos_embed_forward(out, table, grids, merge, side, dim);
  }
  void vision_pos_embed_backward(float* dtable, const float* dout, const std::vector<ImageGrid>& grids, int64_t merge,
                                 int64_t side, int64_t dim) override {
    D(dtable), D(dout);
    OPEN;
    cpu().vision_pos_embed_backward(dtable, dout, grids, merge, side, dim);
  }
  void moe_route_forward(float* probs, int32_t* experts, float* weights, int32_t* order, int32_t* offsets,
                         const float* logits, const MoeShape& s) override {
    D(probs), D(experts), D(weights), D(order), D(offsets), D(logits);
    OPEN;
    cpu().moe_route_forward(probs, experts, weights, order, offsets, logits, s);
  }
  void moe_route_backward(float* dlogits, const float* dweights, const float* probs, const int32_t* experts,
                          const float* weights, const MoeShape& s) override {
    D(dlogits), D(dweights), D(probs), D(experts), D(weights);
    OPEN;
    cpu().moe_route_backward(dlogits, dweights, probs, experts, weights, s);
  }
  void moe_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const float* gate_up,
                           const float* down, const float* weights, const int32_t* order, const int32_t* offsets,
                           const MoeShape& s) override {
    D(out), D(gate), D(up), D(y), D(x), D(gate_up), D(down), D(weights), D(order), D(offsets);
    OPEN;
    cpu().moe_experts_forward(out, gate, up, y, x, gate_up, down, weights, order, offsets, s);
  }
  void moe_experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout,
                            const float* x, const float* gate_up, const float* down, const float* weights,
                            const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                            const float* y, const MoeShape& s) override {
    D(dx), D(dgate_up), D(ddown), D(dweights), D(dout), D(x), D(gate_up), D(down), D(weights), D(order), D(offsets),
        D(gate), D(up), D(y);
    OPEN;
    cpu().moe_experts_backward(dx, dgate_up, ddown, dweights, dout, x, gate_up, down, weights, order, offsets, gate, up,
                               y, s);
  }
  void moe_aux_backward(float* dlogits, const float* probs, const double* counts, const int32_t* cu, int64_t n_seqs,
                        int64_t layers, float scale, const MoeShape& s) override {
    D(dlogits), D(probs), H(counts), H(cu);
    OPEN;
    cpu().moe_aux_backward(dlogits, probs, counts, cu, n_seqs, layers, scale, s);
  }
  size_t logprob_forward(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                         const int32_t* targets, const LogprobShape& s) override {
    D(logp), D(entropy), D(lse), D(hidden), D(head), D(targets);
    OPEN;
    return cpu().logprob_forward(logp, entropy, lse, hidden, head, targets, s);
  }
  size_t logprob_backward(float* dhidden, float* dhead, const float* dlogp, const float* dentropy, const float* hidden,
                          const float* head, const int32_t* targets, const float* lse, const float* entropy,
                          const LogprobShape& s) override {
    D(dhidden), D(dhead), D(dlogp), D(dentropy), D(hidden), D(head), D(targets), D(lse), D(entropy);
    OPEN;
    return cpu().logprob_backward(dhidden, dhead, dlogp, dentropy, hidden, head, targets, lse, entropy, s);
  }
  void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                      int64_t kv_dim) override {
    D(k_cache), D(v_cache), D(k), D(v), D(slots);
    OPEN;
    cpu().kv_cache_write(k_cache, v_cache, k, v, slots, T, kv_dim);
  }
  void paged_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                               const PagedAttentionShape& s) override {
    D(out), D(q), D(k_cache), D(v_cache), D(s.block_tables), D(s.seq_of_token), D(s.n_keys);
    OPEN;
    cpu().paged_attention_forward(out, q, k_cache, v_cache, s);
  }
  void kv_cache_write_bf16(uint16_t* k_cache, uint16_t* v_cache, const float* k, const float* v, const int32_t* slots,
                           int64_t T, int64_t kv_dim) override {
    D(k_cache), D(v_cache), D(k), D(v), D(slots);
    OPEN;
    cpu().kv_cache_write_bf16(k_cache, v_cache, k, v, slots, T, kv_dim);
  }
  void paged_attention_forward_bf16(float* out, const float* q, const uint16_t* k_cache, const uint16_t* v_cache,
                                    const PagedAttentionShape& s) override {
    D(out), D(q), D(k_cache), D(v_cache), D(s.block_tables), D(s.seq_of_token), D(s.n_keys);
    OPEN;
    cpu().paged_attention_forward_bf16(out, q, k_cache, v_cache, s);
  }
  void sample(int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b) override {
    D(tokens), D(logprobs), D(logits), D(b.history), H(b.params), H(b.history_offsets);
    OPEN;
    cpu().sample(tokens, logprobs, logits, b);
  }
  void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t step,
                  bool decay) override {
    D(p), D(g), D(m), D(v);
    OPEN;
    cpu().adamw_step(p, g, m, v, n, cfg, step, decay);
  }
  double sum_squares(const float* g, int64_t n) override {
    D(g);
    OPEN;
    return cpu().sum_squares(g, n);
  }
  void scale_inplace(float* g, float s, int64_t n) override {
    D(g);
    OPEN;
    cpu().scale_inplace(g, s, n);
  }

  mutable int violations = 0;
  int64_t ops = 0;
  size_t live() const { return live_.size(); }

 private:
  static Backend& cpu() { return cpu_backend(); }
  char* base_ = nullptr;
  size_t cap_ = 0, used_ = 0;
  std::map<char*, size_t> live_;  // live allocations and their sizes
  std::thread::id owner_;
};

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
  }
  int32_t below(int64_t n) { return static_cast<int32_t>(next() % n); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * ((next() >> 40) / 16777216.0f); }
};

using Outputs = std::vector<std::pair<std::string, std::vector<float>>>;

Outputs run(Backend& be, const Qwen3Config& cfg, bool recompute, ComputeDType dtype) {
  Outputs out;
  Qwen3Model model(cfg, be, 7, 0.05f);
  model.set_recompute(recompute);
  model.set_compute_dtype(dtype);
  if (cfg.experts > 0) model.set_aux_loss_weight(0.05f);
  Rng rng{40};
  const std::vector<int32_t> cu = {0, 9, 16};
  const int64_t T = 16;
  std::vector<int32_t> tokens(T), targets(T);
  for (auto& t : tokens) t = rng.below(cfg.vocab - 1);  // the last id is a Qwen3-VL model's image token
  PackedBatch b;
  const std::optional<TestImages> images = cfg.vision ? std::optional<TestImages>(*cfg.vision) : std::nullopt;
  if (images) images->place(cfg, tokens, b);
  for (int64_t t = 0; t < T; ++t) targets[t] = t == 8 || t == 15 || t < 3 ? -1 : tokens[t + 1];
  b.T = T, b.tokens = tokens.data(), b.cu_seqlens = cu.data(), b.n_seqs = 2, b.targets = targets.data();
  for (int step = 0; step < 2; ++step) {
    ForwardOptions fo;
    fo.training = true, fo.entropy = true, fo.temperature = 0.9f;
    std::vector<float> logp(T), ent(T);
    model.forward(b, fo, logp.data(), ent.data(), nullptr);
    out.push_back({"logp", logp});
    out.push_back({"entropy", ent});
    if (cfg.experts > 0) {
      auto aux = model.aux_losses();
      out.push_back({"aux", std::vector<float>(aux.begin(), aux.end())});
      out.push_back({"load", std::vector<float>(model.expert_load().begin(), model.expert_load().end())});
    }
    std::vector<float> dlogp(T), dent(T);
    for (auto& x : dlogp) x = rng.uniform(-1, 1);
    for (auto& x : dent) x = rng.uniform(-0.1f, 0.1f);
    model.zero_grad();
    model.backward(dlogp.data(), T, dent.data());
    out.push_back({"grads", every_param(model, &Qwen3Model::get_grad)});
    AdamWConfig adam;
    adam.lr = 1e-3f;
    StepResult r = model.optimizer_step(adam, 0.5f, std::vector<bool>(model.params().size(), true));
    out.push_back({"norm", {static_cast<float>(r.grad_norm)}});
  }
  out.push_back({"weights", every_param(model, &Qwen3Model::get_param)});
  {  // inference forward with full logits, all targets present (R == T) and none (R == 0)
    ForwardOptions fo;
    fo.logits = true, fo.temperature = 0.7f;
    std::vector<float> logp(T), logits(T * cfg.vocab);
    model.forward(b, fo, logp.data(), nullptr, logits.data());
    out.push_back({"infer_logp", logp});
    out.push_back({"infer_logits", logits});
    std::vector<int32_t> all_t(T), none(T, -1);
    for (int64_t t = 0; t < T; ++t) all_t[t] = rng.below(cfg.vocab);
    PackedBatch b2 = b;
    b2.targets = all_t.data();
    ForwardOptions tr;
    tr.training = true;
    model.forward(b2, tr, logp.data(), nullptr, nullptr);
    out.push_back({"all_targets_logp", logp});
    std::vector<float> g(T, 0.1f);
    model.backward(g.data(), T, nullptr);
    b2.targets = none.data();
    model.forward(b2, tr, logp.data(), nullptr, nullptr);
    model.backward(g.data(), T, nullptr);
    out.push_back({"grads2", every_param(model, &Qwen3Model::get_grad)});
    std::vector<float> m(model.optimizer_floats()), v(model.optimizer_floats());
    model.get_optimizer_state(m.data(), v.data());
    out.push_back({"adam_m", m});
    model.set_optimizer_state(m.data(), v.data(), model.optimizer_steps());
  }
  {  // generation: prefill two prompts, fork one (copy on write), sample a few steps
    Generator gen(model, 4, 32);
    KvCache& cache = gen.cache();
    const int64_t a = cache.add_sequence(), c = cache.add_sequence();
    std::vector<SamplerParams> sp(2);
    sp[0].temperature = 0.8f, sp[0].seed = 3, sp[0].repetition_penalty = 1.2f, sp[0].top_k = 20;
    sp[1].temperature = 1.0f, sp[1].seed = 4, sp[1].top_p = 0.9f;
    CachedStep s;
    std::vector<int64_t> ids = {a, c};
    std::vector<int32_t> rows = {8, 15}, tok(2);
    std::vector<float> lp(2);
    s.T = T, s.tokens = tokens.data(), s.n_seqs = 2, s.seq_ids = ids.data(), s.cu_seqlens = cu.data();
    s.n_logit_rows = 2, s.logit_rows = rows.data();
    if (images) images->place(s);
    gen.step(s, sp.data(), tok.data(), lp.data());
    s = CachedStep{};
    std::vector<float> trace;
    const int64_t f = cache.fork(a);  // shares a's partly filled last block (9 tokens, block 4)
    std::vector<int64_t> ids3 = {a, c, f};
    std::vector<int32_t> cu3 = {0, 1, 2, 3}, rows3 = {0, 1, 2}, tok3(3), next(3);
    std::vector<float> lp3(3);
    std::vector<SamplerParams> sp3 = {sp[0], sp[1], sp[0]};
    sp3[2].stream = 1;
    next = {tok[0], tok[1], tok[0]};
    for (int it = 0; it < 5; ++it) {
      s.T = 3, s.tokens = next.data(), s.n_seqs = 3, s.seq_ids = ids3.data(), s.cu_seqlens = cu3.data();
      s.n_logit_rows = 3, s.logit_rows = rows3.data();
      for (auto& p : sp3) ++p.counter;
      gen.step(s, sp3.data(), tok3.data(), lp3.data());
      for (int k = 0; k < 3; ++k) trace.push_back(static_cast<float>(tok3[k])), trace.push_back(lp3[k]);
      next = tok3;
    }
    out.push_back({"gen", trace});
    auto st = gen.stats();
    out.push_back({"copies", {static_cast<float>(st.cache.block_copies)}});
  }
  model.release_decode_workspace();
  return out;
}

Qwen3Config dense(bool tie) {
  Qwen3Config c;
  c.vocab = 300, c.hidden = 64, c.intermediate = 96, c.layers = 2, c.heads = 4, c.kv_heads = 2, c.head_dim = 32;
  c.rope_theta = 10000.0f;
  c.tie_embeddings = tie;
  return c;
}
Qwen3Config moe() {
  Qwen3Config c = dense(false);
  c.layers = 3, c.experts = 8, c.experts_per_token = 2, c.moe_intermediate = 48, c.mlp_only_layers = {1};
  return c;
}

}  // namespace

int main() {
  GuardBackend guard;
  int bad = 0;
  struct Case {
    const char* name;
    Qwen3Config cfg;
    bool recompute;
    ComputeDType dtype;
  };
  const ComputeDType f32 = ComputeDType::f32, bf16 = ComputeDType::bf16;
  for (const Case& k :
       {Case{"dense", dense(false), false, f32}, Case{"dense tied recompute", dense(true), true, f32},
        Case{"moe", moe(), false, f32}, Case{"moe recompute", moe(), true, f32},
        Case{"dense bf16", dense(false), false, bf16}, Case{"vl", with_test_vision(dense(false)), false, f32},
        Case{"vl recompute bf16", with_test_vision(dense(false)), true, bf16},
        Case{"moe tied bf16 recompute",
             [] {
               Qwen3Config c = moe();
               c.tie_embeddings = true;
               return c;
             }(),
             true, bf16}}) {
    Outputs want, got;
    try {
      want = run(cpu_backend(), k.cfg, k.recompute, k.dtype);
      got = run(guard, k.cfg, k.recompute, k.dtype);
    } catch (const std::exception& e) {
      printf("%s: threw: %s\n", k.name, e.what());
      ++bad;
      continue;
    }
    int diffs = 0;
    for (size_t i = 0; i < want.size(); ++i)
      if (want[i].second != got[i].second) {
        printf("%s: output %s differs\n", k.name, want[i].first.c_str());
        ++diffs;
      }
    printf("%s: %zu outputs, %d differ; backend ops %lld, live allocations after %zu\n", k.name, want.size(), diffs,
           static_cast<long long>(guard.ops), guard.live());
    bad += diffs;
  }
  printf("contract violations: %d, failures: %d\n", guard.violations, bad);
  return bad || guard.violations ? 1 : 0;
}
