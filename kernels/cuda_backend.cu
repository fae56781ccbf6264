// The CUDA backend (native/cuda/cuda_backend.h): device memory from the stream-ordered pool, every op of the
// Backend interface on the kernels of this folder, in call order on the default stream.
//
// Shapes are host structs, but the model fills their index arrays (attention's cu_seqlens, paged
// attention's block tables) with backend memory, as the Backend contract says: the kernels that also
// validate them on the host (attention) get a host copy here, a few hundred bytes per call.
// The sampler runs on the host from copies (cpu::sample) unless MEDIX_CUDA_SAMPLER=gpu (see sample).
// Mixture-of-experts ops run on kernels/moe.cu (their load statistics and cu_seqlens for the aux loss
// are host memory, as the Backend contract says).
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "common.cuh"
#include "cuda/cuda_backend.h"
#include "dist/communicator.h"
#include "ops/sampling.h"

namespace medix::cuda {
namespace {

class CudaBackend final : public Backend {
 public:
  // One process per GPU: local rank r of the run uses device r mod the device count, as the NCCL
  // communicator does (native/cuda/nccl.h).
  CudaBackend() {
    int count = 0;
    check(cudaGetDeviceCount(&count), "cuda backend: cudaGetDeviceCount");
    if (count == 0) fail("cuda backend: no CUDA device");
    device_ = world().local_rank() % count;
    // The device's default pool (alloc and release below, and every kernel's Scratch) keeps what is
    // freed for the next allocation instead of returning it to the driver at each synchronisation;
    // device_alloc (runtime.cu) trims it when an allocation would otherwise fail.
    cudaMemPool_t pool = nullptr;
    check(cudaDeviceGetDefaultMemPool(&pool, device_), "cuda backend: cudaDeviceGetDefaultMemPool");
    uint64_t keep = UINT64_MAX;
    check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), "cuda backend: memory pool");
  }

  const char* name() const override { return "cuda"; }

  // The device becomes current once on the thread that owns this backend's work (a model's
  // BackendThread); bind() in each op below stays for callers on other threads (runOp, the programs).
  void bind_thread() override { bind(); }

  void synchronize() override {
    bind();
    check(cudaDeviceSynchronize(), "cuda backend: synchronize");
  }

  // Stream-ordered on the default stream, where every op runs: the vision tower and per-call buffers
  // allocate and free each step, and cudaFree would synchronise the whole device every time. The
  // NCCL communicator's stream waits for the default stream before a collective and is synchronised
  // after it, so nothing still reads a buffer its release hands back to the pool.
  void* alloc(size_t bytes) override {
    bind();
    void* p = device_alloc(bytes, 0, "cuda backend alloc");
    check(cudaMemsetAsync(p, 0, bytes, 0), "cuda backend alloc (zero fill)");
    return p;
  }
  // Without alloc's fill: the pass over the memory it saves is the point (backend.h).
  void* alloc_uninit(size_t bytes) override {
    bind();
    return device_alloc(bytes, 0, "cuda backend alloc");
  }
  void release(void* p) override {
    bind();
    device_free(p, 0, "cuda backend release");
  }
  void to_host(void* dst, const void* src, size_t bytes) override {
    bind();
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cuda backend to_host");
  }
  void from_host(void* dst, const void* src, size_t bytes) override {
    bind();
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cuda backend from_host");
  }
  void zero(float* p, int64_t n) override {
    bind();
    check(cudaMemsetAsync(p, 0, sizeof(float) * n), "cuda backend zero");
  }
  void copy(float* dst, const float* src, int64_t n) override {
    bind();
    check(cudaMemcpyAsync(dst, src, sizeof(float) * n, cudaMemcpyDeviceToDevice), "cuda backend copy");
  }

  void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim) override {
    bind();
    cuda::embedding_forward(out, ids, table, n, dim);
  }
  void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t n, int64_t dim) override {
    bind();
    cuda::embedding_backward(dtable, dout, ids, n, dim);
  }
  void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim,
                       float eps) override {
    bind();
    cuda::rmsnorm_forward(out, rstd, x, w, rows, dim, eps);
  }
  void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                        int64_t rows, int64_t dim) override {
    bind();
    cuda::rmsnorm_backward(dx, dw, dout, x, w, rstd, rows, dim);
  }
  // cuBLASLt or the tiled kernel, as kernels.h's linear_forward_auto chooses.
  void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in,
                      int64_t out) override {
    bind();
    cuda::linear_forward_auto(y, x, W, b, T, in, out);
  }
  void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                       int64_t in, int64_t out) override {
    bind();
    cuda::linear_backward_auto(dx, dW, db, dy, x, W, T, in, out);
  }
  // A bf16 compute copy's products: on cuBLASLt they round the fp32 activations to bf16 too (tensor
  // cores; kernels.h, linear_forward_blas), on the tiled kernel they keep them fp32 (the CPU's math).
  void linear_forward_bf16(float* y, const float* x, const uint16_t* W, const float* b, int64_t T, int64_t in,
                           int64_t out) override {
    bind();
    cuda::linear_forward_auto(y, x, as_bf16(W), b, T, in, out);
  }
  void linear_backward_bf16(float* dx, float* dW, float* db, const float* dy, const float* x, const uint16_t* W,
                            int64_t T, int64_t in, int64_t out) override {
    bind();
    cuda::linear_backward_auto(dx, dW, db, dy, x, as_bf16(W), T, in, out);
  }
  void to_bf16(uint16_t* dst, const float* src, int64_t n) override {
    bind();
    cuda::to_bf16(reinterpret_cast<bf16*>(dst), src, n);
  }
  void rope_forward(float* out, const float* x, const int32_t* pos, int64_t T, int64_t n_heads,
                    const RopeSpec& spec) override {
    bind();
    cuda::rope_forward(out, x, pos, T, n_heads, spec);
  }
  void rope_backward(float* dx, const float* dout, const int32_t* pos, int64_t T, int64_t n_heads,
                     const RopeSpec& spec) override {
    bind();
    cuda::rope_backward(dx, dout, pos, T, n_heads, spec);
  }
  void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                         const AttentionShape& s) override {
    bind();
    const HostShape h(*this, s);
    cuda::attention_forward(out, lse, q, k, v, s.cu_seqlens, h.shape);
  }
  void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                          const float* q, const float* k, const float* v, const AttentionShape& s) override {
    bind();
    const HostShape h(*this, s);
    cuda::attention_backward(dq, dk, dv, dout, out, lse, q, k, v, s.cu_seqlens, h.shape);
  }
  void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) override {
    bind();
    cuda::swiglu_forward(out, gate, up, n);
  }
  void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up,
                       int64_t n) override {
    bind();
    cuda::swiglu_backward(dgate, dup, dout, gate, up, n);
  }
  void add_forward(float* out, const float* a, const float* b, int64_t n) override {
    bind();
    cuda::add_forward(out, a, b, n);
  }
  void add_inplace(float* dst, const float* src, int64_t n) override {
    bind();
    cuda::add_inplace(dst, src, n);
  }

  void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                         int64_t rows, int64_t dim, float eps) override {
    bind();
    cuda::layernorm_forward(out, mean, rstd, x, w, b, rows, dim, eps);
  }
  void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                          const float* mean, const float* rstd, int64_t rows, int64_t dim) override {
    bind();
    cuda::layernorm_backward(dx, dw, db, dout, x, w, mean, rstd, rows, dim);
  }
  void gelu_forward(float* out, const float* x, int64_t n, cpu::GeluKind kind) override {
    bind();
    cuda::gelu_forward(out, x, n, kind);
  }
  void gelu_backward(float* dx, const float* dout, const float* x, int64_t n, cpu::GeluKind kind) override {
    bind();
    cuda::gelu_backward(dx, dout, x, n, kind);
  }
  void vision_rope_forward(float* out, const float* x, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                           float theta) override {
    bind();
    cuda::vision_rope_forward(out, x, coords, T, heads, D, theta);
  }
  void vision_rope_backward(float* dx, const float* dout, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                            float theta) override {
    bind();
    cuda::vision_rope_backward(dx, dout, coords, T, heads, D, theta);
  }
  void vision_pos_embed_forward(float* out, const float* table, const std::vector<ImageGrid>& grids, int64_t merge,
                                int64_t side, int64_t dim) override {
    bind();
    cuda::vision_pos_embed_forward(out, table, grids, merge, side, dim);
  }
  void vision_pos_embed_backward(float* dtable, const float* dout, const std::vector<ImageGrid>& grids, int64_t merge,
                                 int64_t side, int64_t dim) override {
    bind();
    cuda::vision_pos_embed_backward(dtable, dout, grids, merge, side, dim);
  }

  void moe_route_forward(float* probs, int32_t* experts, float* weights, int32_t* order, int32_t* offsets,
                         const float* logits, const MoeShape& s) override {
    bind();
    cuda::moe_route_forward(probs, experts, weights, order, offsets, logits, s);
  }
  void moe_route_backward(float* dlogits, const float* dweights, const float* probs, const int32_t* experts,
                          const float* weights, const MoeShape& s) override {
    bind();
    cuda::moe_route_backward(dlogits, dweights, probs, experts, weights, s);
  }
  void moe_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const float* gate_up,
                           const float* down, const float* weights, const int32_t* order, const int32_t* offsets,
                           const MoeShape& s) override {
    bind();
    cuda::moe_experts_forward(out, gate, up, y, x, gate_up, down, weights, order, offsets, s);
  }
  void moe_experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout,
                            const float* x, const float* gate_up, const float* down, const float* weights,
                            const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                            const float* y, const MoeShape& s) override {
    bind();
    cuda::moe_experts_backward(dx, dgate_up, ddown, dweights, dout, x, gate_up, down, weights, order, offsets, gate, up,
                               y, s);
  }
  void moe_experts_forward_bf16(float* out, float* gate, float* up, float* y, const float* x, const uint16_t* gate_up,
                                const uint16_t* down, const float* weights, const int32_t* order,
                                const int32_t* offsets, const MoeShape& s) override {
    bind();
    cuda::moe_experts_forward(out, gate, up, y, x, as_bf16(gate_up), as_bf16(down), weights, order, offsets, s);
  }
  void moe_experts_backward_bf16(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout,
                                 const float* x, const uint16_t* gate_up, const uint16_t* down, const float* weights,
                                 const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                                 const float* y, const MoeShape& s) override {
    bind();
    cuda::moe_experts_backward(dx, dgate_up, ddown, dweights, dout, x, as_bf16(gate_up), as_bf16(down), weights, order,
                               offsets, gate, up, y, s);
  }
  void moe_aux_backward(float* dlogits, const float* probs, const double* counts, const int32_t* cu, int64_t n_seqs,
                        int64_t layers, float scale, const MoeShape& s) override {
    bind();
    cuda::moe_aux_backward(dlogits, probs, counts, cu, n_seqs, layers, scale, s);
  }

  // The kernels' scratch is one [token_chunk, vocab_chunk] logits block.
  size_t logprob_forward(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                         const int32_t* targets, const LogprobShape& s) override {
    bind();
    cuda::logprob_forward(logp, entropy, lse, hidden, head, targets, s);
    return cuda::logprob_scratch_bytes(s);
  }
  size_t logprob_backward(float* dhidden, float* dhead, const float* dlogp, const float* dentropy, const float* hidden,
                          const float* head, const int32_t* targets, const float* lse, const float* entropy,
                          const LogprobShape& s) override {
    bind();
    cuda::logprob_backward(dhidden, dhead, dlogp, dentropy, hidden, head, targets, lse, entropy, s);
    return cuda::logprob_scratch_bytes(s);
  }

  void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                      int64_t kv_dim) override {
    bind();
    cuda::kv_cache_write(k_cache, v_cache, k, v, slots, T, kv_dim);
  }
  void paged_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                               const PagedAttentionShape& s) override {
    bind();
    cuda::paged_attention_forward(out, q, k_cache, v_cache, s);
  }
  void kv_cache_write_bf16(uint16_t* k_cache, uint16_t* v_cache, const float* k, const float* v, const int32_t* slots,
                           int64_t T, int64_t kv_dim) override {
    bind();
    cuda::kv_cache_write(reinterpret_cast<bf16*>(k_cache), reinterpret_cast<bf16*>(v_cache), k, v, slots, T, kv_dim);
  }
  void paged_attention_forward_bf16(float* out, const float* q, const uint16_t* k_cache, const uint16_t* v_cache,
                                    const PagedAttentionShape& s) override {
    bind();
    cuda::paged_attention_forward(out, q, as_bf16(k_cache), as_bf16(v_cache), s);
  }
  // MEDIX_CUDA_SAMPLER=gpu samples with kernels/sampling.cu (the CPU's tokens, by construction and
  // emulation, never yet run on a GPU); host (the default until the conformance program has passed it
  // on one) copies the logits back and runs cpu::sample: exactly the CPU's tokens, at the cost of
  // copying [rows, vocab] logits per decode step.
  void sample(int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b) override {
    bind();
    const char* env = std::getenv("MEDIX_CUDA_SAMPLER");
    const std::string mode = env ? env : "host";
    if (mode == "gpu") return cuda::sample(tokens, logprobs, logits, b);
    if (mode != "host") fail("MEDIX_CUDA_SAMPLER must be host or gpu, not '", mode, "'");
    std::vector<float> host_logits(static_cast<size_t>(b.rows * b.vocab));
    std::vector<int32_t> host_history(static_cast<size_t>(b.history_offsets[b.rows]));
    to_host(host_logits.data(), logits, sizeof(float) * host_logits.size());
    if (!host_history.empty()) to_host(host_history.data(), b.history, sizeof(int32_t) * host_history.size());
    std::vector<int32_t> host_tokens(static_cast<size_t>(b.rows));
    std::vector<float> host_logprobs(static_cast<size_t>(b.rows));
    SampleBatch h = b;
    h.history = host_history.data();
    cpu::sample(host_tokens.data(), host_logprobs.data(), host_logits.data(), h);
    from_host(tokens, host_tokens.data(), sizeof(int32_t) * host_tokens.size());
    from_host(logprobs, host_logprobs.data(), sizeof(float) * host_logprobs.size());
  }

  void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t step,
                  bool decay) override {
    bind();
    cuda::adamw_step(p, g, m, v, n, cfg, step, decay);
  }
  double sum_squares(const float* g, int64_t n) override {
    bind();
    return cuda::sum_squares(g, n);
  }
  void scale_inplace(float* g, float s, int64_t n) override {
    bind();
    cuda::scale_inplace(g, s, n);
  }

 private:
  static const bf16* as_bf16(const uint16_t* p) { return reinterpret_cast<const bf16*>(p); }

  // The runtime's current device is per host thread, and the addon calls the backend from libuv's
  // worker threads: every call first makes this process's device current on its thread (once per
  // thread; the primary context itself is shared by the process's threads).
  void bind() const {
    thread_local int bound = -1;
    if (bound != device_) {
      check(cudaSetDevice(device_), "cuda backend: cudaSetDevice");
      bound = device_;
    }
  }

  int device_ = 0;

  // An attention shape whose cu_seqlens is host memory: the caller's host copy when it gave one, else
  // a copy of the device array (a synchronisation).
  struct HostShape {
    std::vector<int32_t> cu;
    AttentionShape shape;
    HostShape(CudaBackend& be, const AttentionShape& s) : shape(s) {
      if (!s.cu_seqlens_host) {
        cu.resize(static_cast<size_t>(s.n_seqs + 1));
        be.to_host(cu.data(), s.cu_seqlens, sizeof(int32_t) * cu.size());
      }
      shape.cu_seqlens = s.cu_seqlens_host ? s.cu_seqlens_host : cu.data();
    }
  };
};

}  // namespace

Backend& backend() {
  static CudaBackend instance;
  return instance;
}

}  // namespace medix::cuda
