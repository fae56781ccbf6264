// The CUDA backend's op entry points: the same math, argument order and conventions as the CPU
// reference functions in native/ops (read their headers), on device pointers, launched on `stream`.
// Backward functions ACCUMULATE (+=) into every gradient output, as on the CPU.
//
// Reductions run in a fixed order (tree reductions over a fixed block shape, per-chunk partials
// combined in chunk order, no atomics), so the same inputs give the same bits run to run on one GPU.
// Scratch memory is taken from the stream-ordered allocator (cudaMallocAsync) and returned on the
// same stream. Errors (bad arguments, CUDA failures) throw medix::Error naming the op.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "core/reservation.h"
#include "ops/adamw.h"
#include "ops/attention.h"
#include "ops/gelu.h"
#include "ops/logprob.h"
#include "ops/moe.h"
#include "ops/paged_attention.h"
#include "ops/rope.h"
#include "ops/vision_grid.h"

namespace medix::cuda {

// Throws medix::Error naming `what` if a CUDA call or the last launch failed.
void check(cudaError_t err, const char* what);

// Waits for the device, then hands the default pool's unused memory back to the driver (runtime.cu): what
// an allocation outside the pool (cudaMalloc, a reservation's granules) tries before giving up.
void trim_pool(const char* what);
// Throws the out-of-memory error for `bytes` wanted by `what`, with the device's free memory and the pool's.
[[noreturn]] void out_of_memory(size_t bytes, const char* what);

// Address space of `bytes` on `device`, backed granule by granule while acquired (reservation.cu).
std::unique_ptr<Reservation> reserve_device(int64_t bytes, int device);

// `bytes` (at least 1) of device memory on the current device, 256-byte aligned: from the stream-ordered pool
// on `stream`, or with cudaMalloc when `pooled` is false. Running out throws an error that says what was asked for, the
// device's free and total memory, what the pool holds, and which settings lower a step's needs.
void* device_alloc(size_t bytes, cudaStream_t stream, const char* what, bool pooled = true);
// Returns device_alloc's pooled memory on `stream`. A failure is printed and cleared, not thrown (it runs
// in destructors), so the next op's check does not report it as its own.
void device_free(void* p, cudaStream_t stream, const char* what);

// C[M,N] = alpha * op(A) op(B) + beta * C, row-major, as medix::gemm (native/core/gemm.h):
// op(A) is A [M,K] (lda) or A^T (A stored [K,M]); likewise B. beta == 0 never reads C.
// A plain tiled fp32 kernel of our own (correctness first; cuBLASLt replaces it for speed later).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc, cudaStream_t stream = 0);

// Row-major C[M,N] = alpha op(A) op(B) + beta C through cuBLASLt (kernels/cublaslt.cu), opened at run
// time: the first call throws medix::Error naming the library and where it was looked for when it is
// missing. A and B share `ab`; C is `c` (bf16 inputs may write fp32 or bf16, fp32 inputs write fp32);
// fp32 accumulation and scaling always. Pointers must be 256-byte aligned. beta == 0 never reads C.
enum class GemmType { F32, BF16 };
void blas_gemm(GemmType ab, GemmType c, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const void* A, int64_t lda, const void* B, int64_t ldb, float beta, void* C, int64_t ldc,
               cudaStream_t stream = 0);
// Whether p meets blas_gemm's alignment (callers with a fallback check it instead of catching the refusal).
bool blas_aligned(const void* p);

// linear.h through blas_gemm: fp32, or bf16 weights and activations with fp32 accumulation (no bias).
// Backward accumulates; dW is fp32 in both (the master gradient). With fp32 outputs a bias (b, db; may
// be null) is the tiled path's: y starts as the bias rows and the product is added onto them; db is
// linear_bias_grad's column sums (the vision tower's layers all have one).
void linear_forward_blas(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out,
                         cudaStream_t stream = 0);
void linear_backward_blas(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                          int64_t in, int64_t out, cudaStream_t stream = 0);
void linear_forward_blas(__nv_bfloat16* y, const __nv_bfloat16* x, const __nv_bfloat16* W, int64_t T, int64_t in,
                         int64_t out, cudaStream_t stream = 0);
void linear_backward_blas(__nv_bfloat16* dx, float* dW, const __nv_bfloat16* dy, const __nv_bfloat16* x,
                          const __nv_bfloat16* W, int64_t T, int64_t in, int64_t out, cudaStream_t stream = 0);
// The mixed form a bf16 compute copy uses (backend ops LinearForwardBf16, LinearBackwardBf16): fp32
// activations, bf16 W. The activations (x; dy in backward) are rounded to bf16 (to_bf16) into stream-ordered scratch so
// every product runs on bf16 tensor cores with fp32 accumulation, as mixed-precision training does; y, dx and dW stay
// fp32. So the result differs from the CPU's (fp32 activations) by the activations' rounding, at most 2^-8 sum_k
// |x_k||W_ik| per element; on bf16-exact activations only by the order of the sums.
void linear_forward_blas(float* y, const float* x, const __nv_bfloat16* W, const float* b, int64_t T, int64_t in,
                         int64_t out, cudaStream_t stream = 0);
void linear_backward_blas(float* dx, float* dW, float* db, const float* dy, const float* x, const __nv_bfloat16* W,
                          int64_t T, int64_t in, int64_t out, cudaStream_t stream = 0);

// The fused log-probs of logprob.h with bf16 hidden states and head (the GPU training precision): the
// logits of all T tokens for `s.vocab_chunk` vocabulary entries at a time go through cuBLASLt (fp32
// accumulation) into an fp32 chunk buffer, then an online max / sum-exp in fp32 and the target's
// gather; backward recomputes each chunk. Never T x V in memory: scratch is T x vocab_chunk x 6 bytes
// plus O(T). s.token_chunk is unused. vocab_chunk must be a multiple of 128 (keeps the head's chunks
// 256-byte aligned for cuBLASLt). Gradients are fp32 and accumulate, as on the CPU.
void logprob_forward_blas(float* logp, float* entropy, float* lse, const __nv_bfloat16* hidden,
                          const __nv_bfloat16* head, const int32_t* targets, const LogprobShape& s,
                          cudaStream_t stream = 0);
void logprob_backward_blas(float* dhidden, float* dhead, const float* dlogp, const float* dentropy,
                           const __nv_bfloat16* hidden, const __nv_bfloat16* head, const int32_t* targets,
                           const float* lse, const float* entropy, const LogprobShape& s, cudaStream_t stream = 0);

// linear.h: y[T,out] = x[T,in] W[out,in]^T (+ b); backward dx += dy W, dW += dy^T x, db += sum_t dy.
// The layer as the CUDA backend (and the MoE experts) run it: cuBLASLt (fp32 compute, no TF32; with a bf16 W the
// activations are rounded to bf16 too, linear_forward_blas) where it opens and every operand keeps its 256-byte
// alignment, else the tiled kernel (unaligned operands, e.g. a tiny model's tensor offsets; no rows; no cuBLASLt). The
// conformance program checks both against the CPU. MEDIX_CUDA_LINEAR=tiled forces the tiled kernel; =cublaslt makes a
// missing library an error; auto (the default) chooses as above.
void linear_forward_auto(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out,
                         cudaStream_t stream = 0);
void linear_backward_auto(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                          int64_t in, int64_t out, cudaStream_t stream = 0);
void linear_forward_auto(float* y, const float* x, const __nv_bfloat16* W, const float* b, int64_t T, int64_t in,
                         int64_t out, cudaStream_t stream = 0);
void linear_backward_auto(float* dx, float* dW, float* db, const float* dy, const float* x, const __nv_bfloat16* W,
                          int64_t T, int64_t in, int64_t out, cudaStream_t stream = 0);
// The bias parts alone: y[t, :] = b for every row; db[o] += sum_t dy[t, o] (in double, in fixed chunks of tokens).
void linear_bias_rows(float* y, const float* b, int64_t T, int64_t out, cudaStream_t stream = 0);
void linear_bias_grad(float* db, const float* dy, int64_t T, int64_t out, cudaStream_t stream = 0);
// The tiled kernel (kernels/linear.cu), any alignment.
void linear_forward(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out,
                    cudaStream_t stream = 0);
void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                     int64_t in, int64_t out, cudaStream_t stream = 0);
// linear.h's *_bf16 on the same tiled kernel: bf16 W widened as it is loaded, fp32 activations and sums,
// i.e. the CPU's math up to the order of the sums. dW (fp32, the master gradient) is the fp32 dy^T x.
void linear_forward(float* y, const float* x, const __nv_bfloat16* W, const float* b, int64_t T, int64_t in,
                    int64_t out, cudaStream_t stream = 0);
void linear_backward(float* dx, float* dW, float* db, const float* dy, const float* x, const __nv_bfloat16* W,
                     int64_t T, int64_t in, int64_t out, cudaStream_t stream = 0);

// bf16.h's f32 -> bf16 conversion with the CPU's bits (NaN quieted, zero and denormals to a zero of
// the same sign, otherwise nearest even): a model's bf16 compute copy is the same on either backend.
void to_bf16(__nv_bfloat16* dst, const float* src, int64_t n, cudaStream_t stream = 0);
void from_bf16(float* dst, const __nv_bfloat16* src, int64_t n, cudaStream_t stream = 0);

// embedding.h
void embedding_forward(float* out, const int32_t* ids, const float* table, int64_t n, int64_t dim,
                       cudaStream_t stream = 0);
void embedding_backward(float* dtable, const float* dout, const int32_t* ids, int64_t n, int64_t dim,
                        cudaStream_t stream = 0);

// rmsnorm.h (per-head q/k norm: rows = tokens * heads, dim = head_dim)
void rmsnorm_forward(float* out, float* rstd, const float* x, const float* w, int64_t rows, int64_t dim, float eps,
                     cudaStream_t stream = 0);
void rmsnorm_backward(float* dx, float* dw, const float* dout, const float* x, const float* w, const float* rstd,
                      int64_t rows, int64_t dim, cudaStream_t stream = 0);

// rope.h: spec.freq_component is a HOST pointer (head_dim/2 entries) or null; pos is on the device.
void rope_forward(float* out, const float* x, const int32_t* pos, int64_t T, int64_t n_heads, const RopeSpec& spec,
                  cudaStream_t stream = 0);
void rope_backward(float* dx, const float* dout, const int32_t* pos, int64_t T, int64_t n_heads, const RopeSpec& spec,
                   cudaStream_t stream = 0);

// swiglu.h
void swiglu_forward(float* out, const float* gate, const float* up, int64_t n, cudaStream_t stream = 0);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n,
                     cudaStream_t stream = 0);

// residual.h
void add_forward(float* out, const float* a, const float* b, int64_t n, cudaStream_t stream = 0);
void add_inplace(float* dst, const float* src, int64_t n, cudaStream_t stream = 0);

// bf16 storage, fp32 arithmetic: each result is the fp32 result rounded to bf16 (nearest even).
void add_forward(__nv_bfloat16* out, const __nv_bfloat16* a, const __nv_bfloat16* b, int64_t n,
                 cudaStream_t stream = 0);
void add_inplace(__nv_bfloat16* dst, const __nv_bfloat16* src, int64_t n, cudaStream_t stream = 0);
void swiglu_forward(__nv_bfloat16* out, const __nv_bfloat16* gate, const __nv_bfloat16* up, int64_t n,
                    cudaStream_t stream = 0);
void swiglu_backward(__nv_bfloat16* dgate, __nv_bfloat16* dup, const __nv_bfloat16* dout, const __nv_bfloat16* gate,
                     const __nv_bfloat16* up, int64_t n, cudaStream_t stream = 0);

// adamw.h. adamw_step multiplies the gradient by grad_scale first (the global-norm clip folded in:
// the same bits as scale_inplace followed by the CPU adamw_step, without writing g back).
void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t step,
                bool decay, float grad_scale = 1.0f, cudaStream_t stream = 0);
// Sum of squares in double over a fixed number of chunks, combined in chunk order; synchronises
// the stream to return the value. +inf/NaN if any element is non-finite.
double sum_squares(const float* g, int64_t n, cudaStream_t stream = 0);
void scale_inplace(float* g, float s, int64_t n, cudaStream_t stream = 0);

// attention.h: GQA over packed sequences, causal or not (s.causal). s.cu_seqlens is the HOST copy;
// cu_seqlens_device the same n_seqs + 1 values on the device. head_dim 1 to 256. With s.bf16_operands,
// tensor cores with bf16 operands when they fit the device (attention.cu says which path runs).
void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const int32_t* cu_seqlens_device, const AttentionShape& s, cudaStream_t stream = 0);
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const int32_t* cu_seqlens_device,
                        const AttentionShape& s, cudaStream_t stream = 0);

// logprob.h: fused head + log-softmax + gather + entropy. targets are on the device; they are not
// range-checked on the GPU (the caller validates them on the host, as the CPU function does).
// token_chunk x vocab_chunk floats of scratch hold one logits block at a time (a chunk of 0: the GPU's
// default); logprob_scratch_bytes says how many bytes that is for a shape.
size_t logprob_scratch_bytes(const LogprobShape& s);
void logprob_forward(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                     const int32_t* targets, const LogprobShape& s, cudaStream_t stream = 0);
void logprob_backward(float* dhidden, float* dhead, const float* dlogp, const float* dentropy, const float* hidden,
                      const float* head, const int32_t* targets, const float* lse, const float* entropy,
                      const LogprobShape& s, cudaStream_t stream = 0);

// Vision tower (layernorm.h, gelu.h, vision_rope.h, vision_pos_embed.h).
void layernorm_forward(float* out, float* mean, float* rstd, const float* x, const float* w, const float* b,
                       int64_t rows, int64_t dim, float eps, cudaStream_t stream = 0);
void layernorm_backward(float* dx, float* dw, float* db, const float* dout, const float* x, const float* w,
                        const float* mean, const float* rstd, int64_t rows, int64_t dim, cudaStream_t stream = 0);
void gelu_forward(float* out, const float* x, int64_t n, cpu::GeluKind kind, cudaStream_t stream = 0);
void gelu_backward(float* dx, const float* dout, const float* x, int64_t n, cpu::GeluKind kind,
                   cudaStream_t stream = 0);
// vision_rope.h: coords [T, 2] are on the device; D a positive multiple of 4 (the op table's rule). The
// D/4 inverse frequencies go to the device each call (from pageable memory: no synchronisation).
void vision_rope_forward(float* out, const float* x, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                         float theta, cudaStream_t stream = 0);
void vision_rope_backward(float* dx, const float* dout, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                          float theta, cudaStream_t stream = 0);
// vision_pos_embed.h: grids are HOST memory. The interpolation taps (forward; 48 bytes a patch) and the
// backward's per-row lists (8 bytes per patch and tap) are built on the host and copied over each call.
void vision_pos_embed_forward(float* out, const float* table, const std::vector<ImageGrid>& grids, int64_t merge,
                              int64_t side, int64_t dim, cudaStream_t stream = 0);
void vision_pos_embed_backward(float* dtable, const float* dout, const std::vector<ImageGrid>& grids, int64_t merge,
                               int64_t side, int64_t dim, cudaStream_t stream = 0);

// Inference with the paged KV cache (paged_attention.h). slots and the shape's block_tables,
// seq_of_token and n_keys are device memory here. The T slots must be distinct: the CPU writes tokens in
// order (the last of two on one slot wins), here one block per token writes, so a repeated slot races.
void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                    int64_t kv_dim, cudaStream_t stream = 0);
void paged_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                             const PagedAttentionShape& s, cudaStream_t stream = 0);
// The same over a bf16 cache: the write rounds k and v as to_bf16 does (the CPU's bits), the attention
// widens each cached value to fp32 as it loads it.
void kv_cache_write(__nv_bfloat16* k_cache, __nv_bfloat16* v_cache, const float* k, const float* v,
                    const int32_t* slots, int64_t T, int64_t kv_dim, cudaStream_t stream = 0);
void paged_attention_forward(float* out, const float* q, const __nv_bfloat16* k_cache, const __nv_bfloat16* v_cache,
                             const PagedAttentionShape& s, cudaStream_t stream = 0);

// Mixture of experts (moe.h), the CPU's results and orders: experts, order and offsets equal the
// CPU's. experts_forward/backward copy the E + 1 offsets to the host (a synchronisation) to size one
// GEMM per expert and projection; moe_aux_backward takes counts and cu on the HOST (as the Backend
// contract says). At most 1024 experts.
void moe_route_forward(float* probs, int32_t* experts, float* weights, int32_t* order, int32_t* offsets,
                       const float* logits, const MoeShape& s, cudaStream_t stream = 0);
void moe_route_backward(float* dlogits, const float* dweights, const float* probs, const int32_t* experts,
                        const float* weights, const MoeShape& s, cudaStream_t stream = 0);
void moe_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const float* gate_up,
                         const float* down, const float* weights, const int32_t* order, const int32_t* offsets,
                         const MoeShape& s, cudaStream_t stream = 0);
void moe_experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout, const float* x,
                          const float* gate_up, const float* down, const float* weights, const int32_t* order,
                          const int32_t* offsets, const float* gate, const float* up, const float* y, const MoeShape& s,
                          cudaStream_t stream = 0);
// The same on a bf16 compute copy (moe.h's *_bf16) through linear_*_auto's bf16 form: the tiled kernel
// keeps fp32 activations (the CPU's math to the order of the sums); cuBLASLt rounds them to bf16 too.
void moe_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const __nv_bfloat16* gate_up,
                         const __nv_bfloat16* down, const float* weights, const int32_t* order, const int32_t* offsets,
                         const MoeShape& s, cudaStream_t stream = 0);
void moe_experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout, const float* x,
                          const __nv_bfloat16* gate_up, const __nv_bfloat16* down, const float* weights,
                          const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                          const float* y, const MoeShape& s, cudaStream_t stream = 0);
void moe_aux_backward(float* dlogits, const float* probs, const double* counts, const int32_t* cu, int64_t n_seqs,
                      int64_t layers, float scale, const MoeShape& s, cudaStream_t stream = 0);

}  // namespace medix::cuda

// Token sampling (sampling.h, kernels/sampling.cu), included here, after the other declarations, so
// that this section stays an addition at the end of the file.
#include "ops/sampling.h"

namespace medix::cuda {

// cpu::sample on the GPU: one block per row. params and history_offsets are HOST memory (as the
// Backend contract says); logits, history, tokens and logprobs are device memory. The CPU's tokens,
// seeded draws included (a top-p cut that the CPU's rounding decides is replayed with its rounding;
// sampling.cu says how), and its log-probs within a float ulp. Synchronises the stream: a non-finite
// logit is refused with the CPU's error, naming row and id. vocab up to what shared memory holds
// (0.31 bytes per id: about 530,000 on an A100, 740,000 on an H100).
void sample(int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b, cudaStream_t stream = 0);

}  // namespace medix::cuda
