// A "device memory" emulator for programs that run on any CPU machine (no GPU): backend memory comes from one mmap'd
// arena that is PROT_NONE except while a backend op runs, so any host dereference of backend memory outside an op
// faults (SIGSEGV with the stack in gdb). Every op also checks the Backend contract: pointers that must be backend
// memory are inside a live allocation (or null), pointers the contract says are host memory are outside the arena.
// name() is "cuda" so callers refuse what they refuse on CUDA; the attention head_dim limits of kernels/attention.cu
// are enforced too. Ops run the CPU reference, so every output equals the CPU backend's bit for bit.
// Used by device_memory_guard.cc (the model's training and generation) and op_conformance.cc (every op's generic
// device path).
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "../core/backend.h"
#include "../core/error.h"

namespace medix::testing {

class GuardBackend final : public Backend {
 public:
  GuardBackend() {
    // Address space only (MAP_NORESERVE): allocations are never handed out twice, and release returns
    // their pages to the system, so what is resident is what is live.
    // Smaller arenas where the address space is limited (ulimit -v).
    for (size_t gib : {256, 64, 16}) {
      cap_ = gib << 30;
      void* p = mmap(nullptr, cap_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p != MAP_FAILED) {
        base_ = static_cast<char*>(p);
        return;
      }
    }
    die("mmap of the arena (16 GiB at least)");
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
  // A violation of the contract: printed and counted, and with `strict` (the addon's "cuda-guard" backend,
  // where no program reads the count) thrown, naming it. Not for release(), which destructors call.
  void violated(const char* kind, const char* op, const char* what) const {
    fprintf(stderr, "%s: %s: %s\n", kind, op, what);
    ++violations;
    if (strict) fail("backend contract (", kind, "): ", op, ": ", what);
  }
  void dev(const void* p, const char* op, const char* arg) const {
    if (p && !in(p))
      violated("CONTRACT", op, (std::string(arg) + " is not backend memory").c_str());
    else if (p && !live_at(p))
      violated("CONTRACT", op, (std::string(arg) + " points into released backend memory").c_str());
  }
  void host(const void* p, const char* op, const char* arg) const {
    if (p && in(p)) violated("CONTRACT", op, (std::string(arg) + " must be host memory but is backend memory").c_str());
  }
  void thread_check(const char* op) {
    if (owner_ == std::thread::id()) owner_ = std::this_thread::get_id();
    if (owner_ != std::this_thread::get_id()) violated("THREAD", op, "called from another thread");
  }
  struct Open {
    GuardBackend& g;
    explicit Open(GuardBackend& b, const char* op) : g(b) {
      g.thread_check(op);
      ++g.ops;
      // Fails where memory is not overcommitted (vm.overcommit_memory=2): a writable arena is charged.
      if (mprotect(g.base_, g.cap_, PROT_READ | PROT_WRITE) != 0) die("mprotect of the arena to read-write");
    }
    ~Open() {
      if (mprotect(g.base_, g.cap_, PROT_NONE) != 0) die("mprotect of the arena to no access");
    }
  };

  void* alloc(size_t bytes) override { return allocate(bytes, 0, "alloc"); }
  // All bits set: NaN as f32 and as bf16, -1 as int32. An op that reads such memory before writing it
  // makes a result that differs from the CPU's, where the same buffer holds zeros or whatever malloc had.
  void* alloc_uninit(size_t bytes) override { return allocate(bytes, 0xff, "alloc_uninit"); }
  void release(void* p) override {
    if (!p) return;
    auto it = live_.find(static_cast<char*>(p));
    if (it == live_.end()) {
      fprintf(stderr, "CONTRACT: release of %p, not a live allocation of this backend\n", p);
      ++violations;
      return;
    }
    madvise(it->first, span(it->second), MADV_DONTNEED);
    live_.erase(it);
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
    if (s.cu_seqlens_host && std::memcmp(s.cu_seqlens_host, s.cu_seqlens, sizeof(int32_t) * (s.n_seqs + 1)) != 0)
      violated("CONTRACT", fn, "cu_seqlens_host differs from cu_seqlens");
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
  void moe_experts_forward_bf16(float* out, float* gate, float* up, float* y, const float* x, const uint16_t* gate_up,
                                const uint16_t* down, const float* weights, const int32_t* order,
                                const int32_t* offsets, const MoeShape& s) override {
    D(out), D(gate), D(up), D(y), D(x), D(gate_up), D(down), D(weights), D(order), D(offsets);
    OPEN;
    cpu().moe_experts_forward_bf16(out, gate, up, y, x, gate_up, down, weights, order, offsets, s);
  }
  void moe_experts_backward_bf16(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout,
                                 const float* x, const uint16_t* gate_up, const uint16_t* down, const float* weights,
                                 const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                                 const float* y, const MoeShape& s) override {
    D(dx), D(dgate_up), D(ddown), D(dweights), D(dout), D(x), D(gate_up), D(down), D(weights), D(order), D(offsets),
        D(gate), D(up), D(y);
    OPEN;
    cpu().moe_experts_backward_bf16(dx, dgate_up, ddown, dweights, dout, x, gate_up, down, weights, order, offsets,
                                    gate, up, y, s);
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
  bool strict = false;
  int64_t ops = 0;
  size_t live() const { return live_.size(); }

 private:
  static Backend& cpu() { return cpu_backend(); }
  [[noreturn]] static void die(const char* what) {
    fprintf(stderr, "guard backend: %s failed: %s\n", what, strerror(errno));
    abort();
  }
  void* allocate(size_t bytes, int fill, const char* what) {
    Open o(*this, what);
    const size_t n = span(bytes);
    if (used_ + n > cap_) fail("guard backend: arena full");
    char* p = base_ + used_;
    used_ += n;
    std::memset(p, fill, bytes);
    live_[p] = bytes;
    return p;
  }
  // The arena bytes an allocation takes: whole pages (release hands them back), and a guard page after it.
  static size_t span(size_t bytes) {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return (bytes + page - 1) / page * page + page;
  }
  char* base_ = nullptr;
  size_t cap_ = 0, used_ = 0;
  std::map<char*, size_t> live_;  // live allocations and their sizes
  std::thread::id owner_;
};
#undef D
#undef H
#undef OPEN

}  // namespace medix::testing
