// The op interface. Model, optimizer and loss code call ops only through a Backend, so a CUDA
// backend (kernels/) slots in by implementing this class; callers never change. Pointers passed to
// a backend's ops point into memory that backend allocated (host memory for the CPU backend,
// device memory for CUDA). The semantics of each op are documented once, in native/ops/<family>.h,
// whose medix::cpu functions are the reference implementation.
#pragma once
#include <cstddef>
#include <cstdint>

#include <vector>

#include "../ops/attention.h"
#include "../ops/adamw.h"
#include "../ops/gelu.h"
#include "../ops/logprob.h"
#include "../ops/moe.h"
#include "../ops/paged_attention.h"
#include "../ops/rope.h"
#include "../ops/sampling.h"
#include "../ops/vision_grid.h"

namespace medix {

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* name() const = 0;

  // Waits until every op queued so far has finished, so that an asynchronous backend's errors surface
  // in the call that caused them (a BackendThread calls it after each piece of work it runs). A
  // backend whose ops complete before they return (the CPU) has nothing to wait for.
  virtual void synchronize() {}
  // Called once on a BackendThread (backend_thread.h) when it starts, before any op there: makes the
  // backend's device current on that thread (CUDA). The CPU has nothing to do.
  virtual void bind_thread() {}

  // Memory
  virtual void* alloc(size_t bytes) = 0;  // zero-filled
  // Contents unspecified: for a buffer whose every element an op writes before anything reads it (a
  // forward's activations). A backend may skip alloc's fill, which on a GPU is a pass over the memory per
  // allocation; the device-memory guard (native/tests/guard_backend.h) fills it with NaN instead, so a
  // caller that reads before writing gets a result that differs from the CPU's.
  virtual void* alloc_uninit(size_t bytes) { return alloc(bytes); }
  virtual void release(void* p) = 0;
  virtual void to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void zero(float* p, int64_t n) = 0;
  virtual void copy(float* dst, const float* src, int64_t n) = 0;

  // Layers (see native/ops/*.h)
  virtual void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim) = 0;
  virtual void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t n, int64_t dim) = 0;
  virtual void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim,
                               float eps) = 0;
  virtual void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w,
                                const float* rstd, int64_t rows, int64_t dim) = 0;
  virtual void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in,
                              int64_t out) = 0;
  virtual void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W,
                               int64_t T, int64_t in, int64_t out) = 0;
  // bf16 weights (core/bf16.h), f32 activations and accumulation (linear.h's *_bf16), and the
  // conversion that makes a compute copy. Not pure: a backend without them refuses them by name.
  virtual void linear_forward_bf16(float* y, const float* x, const uint16_t* W, const float* b, int64_t T, int64_t in,
                                   int64_t out);
  virtual void linear_backward_bf16(float* dx, float* dW, float* db, const float* dy, const float* x, const uint16_t* W,
                                    int64_t T, int64_t in, int64_t out);
  virtual void to_bf16(uint16_t* dst, const float* src, int64_t n);
  virtual void rope_forward(float* out, const float* x, const int32_t* pos, int64_t T, int64_t n_heads,
                            const RopeSpec& spec) = 0;
  virtual void rope_backward(float* dx, const float* dout, const int32_t* pos, int64_t T, int64_t n_heads,
                             const RopeSpec& spec) = 0;
  virtual void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                                 const AttentionShape& s) = 0;
  virtual void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out,
                                  const float* lse, const float* q, const float* k, const float* v,
                                  const AttentionShape& s) = 0;
  virtual void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) = 0;
  virtual void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                               int64_t n) = 0;
  virtual void add_forward(float* out, const float* a, const float* b, int64_t n) = 0;
  virtual void add_inplace(float* dst, const float* src, int64_t n) = 0;

  // Vision tower (layernorm.h, gelu.h, vision_rope.h, vision_pos_embed.h). Grids are host memory.
  virtual void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                                 int64_t rows, int64_t dim, float eps) = 0;
  virtual void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                                  const float* mean, const float* rstd, int64_t rows, int64_t dim) = 0;
  virtual void gelu_forward(float* out, const float* x, int64_t n, cpu::GeluKind kind) = 0;
  virtual void gelu_backward(float* dx, const float* dout, const float* x, int64_t n, cpu::GeluKind kind) = 0;
  virtual void vision_rope_forward(float* out, const float* x, const int32_t* coords, int64_t T, int64_t heads,
                                   int64_t D, float theta) = 0;
  virtual void vision_rope_backward(float* dx, const float* dout, const int32_t* coords, int64_t T, int64_t heads,
                                    int64_t D, float theta) = 0;
  virtual void vision_pos_embed_forward(float* out, const float* table, const std::vector<ImageGrid>& grids,
                                        int64_t merge, int64_t side, int64_t dim) = 0;
  virtual void vision_pos_embed_backward(float* dtable, const float* dout, const std::vector<ImageGrid>& grids,
                                         int64_t merge, int64_t side, int64_t dim) = 0;

  // Mixture of experts (moe.h). order/offsets are backend memory; moe_aux_backward's load statistics
  // (counts) and cu_seqlens are host memory, like an optimizer config.
  virtual void moe_route_forward(float* probs, int32_t* experts, float* weights, int32_t* order, int32_t* offsets,
                                 const float* logits, const MoeShape& s) = 0;
  virtual void moe_route_backward(float* dlogits, const float* dweights, const float* probs, const int32_t* experts,
                                  const float* weights, const MoeShape& s) = 0;
  virtual void moe_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const float* gate_up,
                                   const float* down, const float* weights, const int32_t* order,
                                   const int32_t* offsets, const MoeShape& s) = 0;
  virtual void moe_experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout,
                                    const float* x, const float* gate_up, const float* down, const float* weights,
                                    const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                                    const float* y, const MoeShape& s) = 0;
  virtual void moe_aux_backward(float* dlogits, const float* probs, const double* counts, const int32_t* cu,
                                int64_t n_seqs, int64_t layers, float scale, const MoeShape& s) = 0;
  // The experts on a bf16 compute copy (moe.h's *_bf16). Not pure: a backend without them refuses them by
  // name, as it refuses bf16 weights.
  virtual void moe_experts_forward_bf16(float* out, float* gate, float* up, float* y, const float* x,
                                        const uint16_t* gate_up, const uint16_t* down, const float* weights,
                                        const int32_t* order, const int32_t* offsets, const MoeShape& s);
  virtual void moe_experts_backward_bf16(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout,
                                         const float* x, const uint16_t* gate_up, const uint16_t* down,
                                         const float* weights, const int32_t* order, const int32_t* offsets,
                                         const float* gate, const float* up, const float* y, const MoeShape& s);

  // Head (the fused log-prob; the token losses on its output are host-side TS)
  virtual size_t logprob_forward(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                                 const int32_t* targets, const LogprobShape& s) = 0;
  virtual size_t logprob_backward(float* dhidden, float* dhead, const float* dlogp, const float* dentropy,
                                  const float* hidden, const float* head, const int32_t* targets, const float* lse,
                                  const float* entropy, const LogprobShape& s) = 0;

  // Inference with a KV cache (paged_attention.h) and sampling (sampling.h). The sampler's params and
  // history offsets are host memory; logits, history and the outputs are backend memory.
  virtual void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots,
                              int64_t T, int64_t kv_dim) = 0;
  virtual void paged_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                                       const PagedAttentionShape& s) = 0;
  // The same over a bf16 cache (a bf16 compute copy's). Not pure: a backend without them refuses them
  // by name, as it refuses bf16 weights.
  virtual void kv_cache_write_bf16(uint16_t* k_cache, uint16_t* v_cache, const float* k, const float* v,
                                   const int32_t* slots, int64_t T, int64_t kv_dim);
  virtual void paged_attention_forward_bf16(float* out, const float* q, const uint16_t* k_cache,
                                            const uint16_t* v_cache, const PagedAttentionShape& s);
  virtual void sample(int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b) = 0;

  // Optimizer
  virtual void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t step,
                          bool decay) = 0;
  virtual double sum_squares(const float* g, int64_t n) = 0;
  virtual void scale_inplace(float* g, float s, int64_t n) = 0;
};

// Backend memory of n elements, owned by a value that moves: per-call buffers, and activations kept in
// containers and released one by one (the vision tower's per-block buffers under recompute). n = 0 still
// allocates (the backends hand out a valid pointer), so an empty argument is never a null pointer.
template <typename T>
class BackendArray {
 public:
  BackendArray() = default;
  // Zero-filled.
  BackendArray(Backend& be, int64_t n) : BackendArray(be, n, be.alloc(bytes(n))) {}
  // Contents unspecified (Backend::alloc_uninit): the caller writes every element before reading any.
  static BackendArray uninit(Backend& be, int64_t n) { return BackendArray(be, n, be.alloc_uninit(bytes(n))); }
  ~BackendArray() { reset(); }
  BackendArray(BackendArray&& o) noexcept : be_(o.be_), n_(o.n_), p_(o.p_) { o.forget(); }
  BackendArray& operator=(BackendArray&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = o.be_, n_ = o.n_, p_ = o.p_;
      o.forget();
    }
    return *this;
  }
  BackendArray(const BackendArray&) = delete;
  BackendArray& operator=(const BackendArray&) = delete;
  void reset() {
    if (p_) be_->release(p_);
    forget();
  }
  T* get() const { return p_; }
  int64_t size() const { return n_; }

 private:
  BackendArray(Backend& be, int64_t n, void* p) : be_(&be), n_(n), p_(static_cast<T*>(p)) {}
  static size_t bytes(int64_t n) { return sizeof(T) * static_cast<size_t>(n); }
  void forget() { p_ = nullptr, n_ = 0; }
  Backend* be_ = nullptr;
  int64_t n_ = 0;
  T* p_ = nullptr;
};

// Backend memory kept between calls and grown on demand (per-step buffers of generation, whose
// size changes from step to step but should not cost an allocation each time).
class GrowableBuffer {
 public:
  explicit GrowableBuffer(Backend& be) : be_(be) {}
  ~GrowableBuffer() {
    if (p_) be_.release(p_);
  }
  GrowableBuffer(const GrowableBuffer&) = delete;
  GrowableBuffer& operator=(const GrowableBuffer&) = delete;
  // At least `bytes` bytes; the contents are not kept when it grows.
  template <typename T>
  T* get(size_t bytes) {
    if (bytes > capacity_ || !p_) {
      if (p_) be_.release(p_);
      p_ = nullptr;  // stays empty if the allocation below throws
      capacity_ = 0;
      p_ = be_.alloc(bytes);
      capacity_ = bytes;
    }
    return static_cast<T*>(p_);
  }

 private:
  Backend& be_;
  void* p_ = nullptr;
  size_t capacity_ = 0;
};

// The reference backend: host memory, the medix::cpu functions.
Backend& cpu_backend();

}  // namespace medix
