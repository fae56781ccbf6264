// The CPU backend: forwards every op to its reference implementation in native/ops, timing it by kind
// when op profiling is on (op_profile.h).
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "backend.h"
#include "bf16.h"
#include "op_profile.h"
#include "../ops/embedding.h"
#include "../ops/layernorm.h"
#include "../ops/linear.h"
#include "../ops/residual.h"
#include "../ops/rmsnorm.h"
#include "../ops/swiglu.h"
#include "../ops/vision_pos_embed.h"
#include "../ops/vision_rope.h"

namespace medix {
namespace {

constexpr size_t kHugePage = size_t(2) << 20;

class CpuBackend final : public Backend {
 public:
  const char* name() const override { return "cpu"; }

  void* alloc(size_t bytes) override { return allocate(bytes, true); }
  void* alloc_uninit(size_t bytes) override { return allocate(bytes, false); }
  void release(void* p) override { std::free(p); }
  void to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void from_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void zero(float* p, int64_t n) override { std::memset(p, 0, sizeof(float) * n); }
  void copy(float* dst, const float* src, int64_t n) override { std::memcpy(dst, src, sizeof(float) * n); }

  void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim) override {
    const OpTimer timer(OpKind::Embedding);
    cpu::embedding_forward(out, ids, table, n, dim);
  }
  void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t n, int64_t dim) override {
    const OpTimer timer(OpKind::Embedding);
    cpu::embedding_backward(dtable, dout, ids, n, dim);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim,
                       float eps) override {
    const OpTimer timer(OpKind::Norm);
    cpu::rmsnorm_forward(out, rstd, x, w, rows, dim, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                        int64_t rows, int64_t dim) override {
    const OpTimer timer(OpKind::Norm);
    cpu::rmsnorm_backward(dx, dw, dout, x, w, rstd, rows, dim);
  }
  void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in,
                      int64_t out) override {
    const OpTimer timer(OpKind::Linear, 2.0 * T * in * out);
    cpu::linear_forward(y, x, W, b, T, in, out);
  }
  void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                       int64_t in, int64_t out) override {
    const OpTimer timer(OpKind::Linear, (dx ? 2.0 : 0.0) * T * in * out + (dW ? 2.0 : 0.0) * T * in * out);
    cpu::linear_backward(dx, dW, db, dy, x, W, T, in, out);
  }
  void linear_forward_bf16(float* y, const float* x, const uint16_t* W, const float* b, int64_t T, int64_t in,
                           int64_t out) override {
    const OpTimer timer(OpKind::Linear, 2.0 * T * in * out);
    cpu::linear_forward_bf16(y, x, W, b, T, in, out);
  }
  void linear_backward_bf16(float* dx, float* dW, float* db, const float* dy, const float* x, const uint16_t* W,
                            int64_t T, int64_t in, int64_t out) override {
    const OpTimer timer(OpKind::Linear, (dx ? 4.0 : 2.0) * T * in * out);
    cpu::linear_backward_bf16(dx, dW, db, dy, x, W, T, in, out);
  }
  void to_bf16(uint16_t* dst, const float* src, int64_t n) override { f32_to_bf16_parallel(dst, src, n); }

  void rope_forward(float* out, const float* x, const int32_t* pos, int64_t T, int64_t n_heads,
                    const RopeSpec& spec) override {
    const OpTimer timer(OpKind::Rope);
    cpu::rope_forward(out, x, pos, T, n_heads, spec);
  }
  void rope_backward(float* dx, const float* dout, const int32_t* pos, int64_t T, int64_t n_heads,
                     const RopeSpec& spec) override {
    const OpTimer timer(OpKind::Rope);
    cpu::rope_backward(dx, dout, pos, T, n_heads, spec);
  }
  void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                         const AttentionShape& s) override {
    const OpTimer timer(OpKind::Attention);
    cpu::attention_forward(out, lse, q, k, v, s);
  }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                          const float* q, const float* k, const float* v, const AttentionShape& s) override {
    const OpTimer timer(OpKind::Attention);
    cpu::attention_backward(dq, dk, dv, dout, out, lse, q, k, v, s);
  }
  void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) override {
    const OpTimer timer(OpKind::Elementwise);
    cpu::swiglu_forward(out, gate, up, n);
  }
  void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                       int64_t n) override {
    const OpTimer timer(OpKind::Elementwise);
    cpu::swiglu_backward(dgate, dup, dout, gate, up, n);
  }
  void add_forward(float* out, const float* a, const float* b, int64_t n) override {
    const OpTimer timer(OpKind::Elementwise);
    cpu::add_forward(out, a, b, n);
  }
  void add_inplace(float* dst, const float* src, int64_t n) override {
    const OpTimer timer(OpKind::Elementwise);
    cpu::add_inplace(dst, src, n);
  }

  void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                         int64_t rows, int64_t dim, float eps) override {
    const OpTimer timer(OpKind::Norm);
    cpu::layernorm_forward(out, mean, rstd, x, w, b, rows, dim, eps);
  }
  void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                          const float* mean, const float* rstd, int64_t rows, int64_t dim) override {
    const OpTimer timer(OpKind::Norm);
    cpu::layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, rows, dim);
  }
  void gelu_forward(float* out, const float* x, int64_t n, cpu::GeluKind kind) override {
    const OpTimer timer(OpKind::Elementwise);
    cpu::gelu_forward(out, x, n, kind);
  }
  void gelu_backward(float* dx, const float* dout, const float* x, int64_t n, cpu::GeluKind kind) override {
    const OpTimer timer(OpKind::Elementwise);
    cpu::gelu_backward(dx, dout, x, n, kind);
  }
  void vision_rope_forward(float* out, const float* x, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                           float theta) override {
    const OpTimer timer(OpKind::Rope);
    cpu::vision_rope_forward(out, x, coords, T, heads, D, theta);
  }
  void vision_rope_backward(float* dx, const float* dout, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                            float theta) override {
    const OpTimer timer(OpKind::Rope);
    cpu::vision_rope_backward(dx, dout, coords, T, heads, D, theta);
  }
  void vision_pos_embed_forward(float* out, const float* table, const std::vector<ImageGrid>& grids, int64_t merge,
                                int64_t side, int64_t dim) override {
    const OpTimer timer(OpKind::Embedding);
    cpu::vision_pos_embed_forward(out, table, grids, merge, side, dim);
  }
  void vision_pos_embed_backward(float* dtable, const float* dout, const std::vector<ImageGrid>& grids, int64_t merge,
                                 int64_t side, int64_t dim) override {
    const OpTimer timer(OpKind::Embedding);
    cpu::vision_pos_embed_backward(dtable, dout, grids, merge, side, dim);
  }

  void moe_route_forward(float* probs, int32_t* experts, float* weights, int32_t* order, int32_t* offsets,
                         const float* logits, const MoeShape& s) override {
    const OpTimer timer(OpKind::Moe);
    cpu::moe_route_forward(probs, experts, weights, order, offsets, logits, s);
  }
  void moe_route_backward(float* dlogits, const float* dweights, const float* probs, const int32_t* experts,
                          const float* weights, const MoeShape& s) override {
    const OpTimer timer(OpKind::Moe);
    cpu::moe_route_backward(dlogits, dweights, probs, experts, weights, s);
  }
  void moe_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const float* gate_up,
                           const float* down, const float* weights, const int32_t* order, const int32_t* offsets,
                           const MoeShape& s) override {
    const OpTimer timer(OpKind::Moe);
    cpu::moe_experts_forward(out, gate, up, y, x, gate_up, down, weights, order, offsets, s);
  }
  void moe_experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout,
                            const float* x, const float* gate_up, const float* down, const float* weights,
                            const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                            const float* y, const MoeShape& s) override {
    const OpTimer timer(OpKind::Moe);
    cpu::moe_experts_backward(dx, dgate_up, ddown, dweights, dout, x, gate_up, down, weights, order, offsets, gate, up,
                              y, s);
  }
  void moe_experts_forward_bf16(float* out, float* gate, float* up, float* y, const float* x, const uint16_t* gate_up,
                                const uint16_t* down, const float* weights, const int32_t* order,
                                const int32_t* offsets, const MoeShape& s) override {
    const OpTimer timer(OpKind::Moe);
    cpu::moe_experts_forward_bf16(out, gate, up, y, x, gate_up, down, weights, order, offsets, s);
  }
  void moe_experts_backward_bf16(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout,
                                 const float* x, const uint16_t* gate_up, const uint16_t* down, const float* weights,
                                 const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                                 const float* y, const MoeShape& s) override {
    const OpTimer timer(OpKind::Moe);
    cpu::moe_experts_backward_bf16(dx, dgate_up, ddown, dweights, dout, x, gate_up, down, weights, order, offsets, gate,
                                   up, y, s);
  }
  void moe_aux_backward(float* dlogits, const float* probs, const double* counts, const int32_t* cu, int64_t n_seqs,
                        int64_t layers, float scale, const MoeShape& s) override {
    const OpTimer timer(OpKind::Moe);
    cpu::moe_aux_backward(dlogits, probs, counts, cu, n_seqs, layers, scale, s);
  }

  size_t logprob_forward(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                         const int32_t* targets, const LogprobShape& s) override {
    const OpTimer timer(OpKind::LogprobHead, 2.0 * s.T * s.hidden * s.vocab);
    return cpu::logprob_forward(logp, entropy, lse, hidden, head, targets, s);
  }
  size_t logprob_backward(float* dhidden, float* dhead, const float* dlogp, const float* dentropy, const float* hidden,
                          const float* head, const int32_t* targets, const float* lse, const float* entropy,
                          const LogprobShape& s) override {
    const OpTimer timer(OpKind::LogprobHead, 6.0 * s.T * s.hidden * s.vocab);
    return cpu::logprob_backward(dhidden, dhead, dlogp, dentropy, hidden, head, targets, lse, entropy, s);
  }

  void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                      int64_t kv_dim) override {
    const OpTimer timer(OpKind::Decode);
    cpu::kv_cache_write(k_cache, v_cache, k, v, slots, T, kv_dim);
  }
  void paged_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                               const PagedAttentionShape& s) override {
    const OpTimer timer(OpKind::Decode);
    cpu::paged_attention_forward(out, q, k_cache, v_cache, s);
  }
  void kv_cache_write_bf16(uint16_t* k_cache, uint16_t* v_cache, const float* k, const float* v, const int32_t* slots,
                           int64_t T, int64_t kv_dim) override {
    const OpTimer timer(OpKind::Decode);
    cpu::kv_cache_write_bf16(k_cache, v_cache, k, v, slots, T, kv_dim);
  }
  void paged_attention_forward_bf16(float* out, const float* q, const uint16_t* k_cache, const uint16_t* v_cache,
                                    const PagedAttentionShape& s) override {
    const OpTimer timer(OpKind::Decode);
    cpu::paged_attention_forward_bf16(out, q, k_cache, v_cache, s);
  }
  void sample(int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b) override {
    const OpTimer timer(OpKind::Decode);
    cpu::sample(tokens, logprobs, logits, b);
  }

  void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t step,
                  bool decay) override {
    const OpTimer timer(OpKind::Optimizer);
    cpu::adamw_step(p, g, m, v, n, cfg, step, decay);
  }
  double sum_squares(const float* g, int64_t n) override {
    const OpTimer timer(OpKind::Optimizer);
    return cpu::sum_squares(g, n);
  }
  void scale_inplace(float* g, float s, int64_t n) override {
    const OpTimer timer(OpKind::Optimizer);
    cpu::scale_inplace(g, s, n);
  }

 private:
  // zero: alloc's fill; alloc_uninit leaves the memory as the C library hands it out.
  void* allocate(size_t bytes, bool zero) {
    // 64-byte alignment suits AVX-512 loads. Large buffers (weights, optimizer state, activations)
    // are aligned to 2 MiB and asked to live on transparent huge pages: streaming the weights once
    // per decoded token is bound by how fast one core can read memory, and with 4 KiB pages a core
    // reads a large buffer at about two thirds of the rate it gets with 2 MiB pages (TLB misses,
    // and prefetches stop at page boundaries). Where THP is off or "never" this is only alignment.
    const size_t align = bytes >= kHugePage ? kHugePage : 64;
    const size_t rounded = bytes == 0 ? align : (bytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, rounded);
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
    if (zero) std::memset(p, 0, rounded);  // after the advice, so the first touch already gets huge pages
    return p;
  }
};

}  // namespace

Backend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace medix
