// Inference attention against the paged KV cache (paged_attention.h): the cache write of new tokens'
// K/V rows, and the attention of each new token's query heads over its sequence's cached keys.
//
// One warp per (token, query head): the lanes split head_dim (at most kMaxPerLane values each), a
// key's score is a warp sum, and the keys are walked once in cache order with an online softmax
// (running max and sum, the accumulator rescaled when the max grows), so nothing of length n_keys is
// stored. The order is fixed, so the result is the same bits on every run; it differs from the CPU's
// two-pass softmax by rounding only. This is the plain version the CPU is checked against: a decode
// over long contexts would split the keys across warps (flash-decoding), kept for when it is timed.
// The cache is fp32 or bf16 (a bf16 compute copy's): bf16 keys and values widen to fp32 as they load,
// and the write rounds with the CPU's conversion (bf16.h), so the cached bits match the CPU's.
#include "backend_op.cuh"
#include "common.cuh"
#include "core/bf16.h"
#include "ops/paged_attention.h"

namespace medix::cuda {
namespace {

constexpr int kMaxPerLane = 8;  // head_dim <= 256
constexpr int kWarpsPerBlock = 4;

__device__ inline float cache_value(float x) { return x; }
__device__ inline float cache_value(uint16_t x) { return bf16_to_f32_scalar(x); }
__device__ inline void store(float* dst, float x) { *dst = x; }
__device__ inline void store(uint16_t* dst, float x) { *dst = f32_to_bf16_scalar(x); }

template <typename CT>
__global__ void kv_cache_write_kernel(CT* k_cache, CT* v_cache, const float* k, const float* v, const int32_t* slots,
                                      int64_t kv_dim) {
  const int64_t t = blockIdx.x;
  const int64_t slot = slots[t];
  for (int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    store(k_cache + slot * kv_dim + i, k[t * kv_dim + i]);
    store(v_cache + slot * kv_dim + i, v[t * kv_dim + i]);
  }
}

template <typename CT>
__global__ void paged_attention_kernel(float* out, const float* q, const CT* k_cache, const CT* v_cache,
                                       PagedAttentionShape s) {
  const int64_t unit = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (unit >= s.T * s.n_heads) return;
  const int64_t t = unit / s.n_heads, h = unit % s.n_heads;
  const int64_t D = s.head_dim, kv_dim = s.n_kv_heads * D;
  const int64_t kvh = h / (s.n_heads / s.n_kv_heads);
  const int32_t* table = s.block_tables + static_cast<int64_t>(s.seq_of_token[t]) * s.max_blocks;
  const int64_t n = s.n_keys[t];
  const float* qh = q + unit * D;
  float qv[kMaxPerLane], acc[kMaxPerLane];
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    const int64_t d = lane + 32 * e;
    qv[e] = d < D ? qh[d] : 0.0f;
    acc[e] = 0.0f;
  }
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = 0; j < n; ++j) {
    const int64_t slot = static_cast<int64_t>(table[j / s.block_size]) * s.block_size + j % s.block_size;
    const CT* kj = k_cache + slot * kv_dim + kvh * D;
    const CT* vj = v_cache + slot * kv_dim + kvh * D;
    float dot = 0.0f;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      const int64_t d = lane + 32 * e;
      if (d < D) dot += qv[e] * cache_value(kj[d]);
    }
    const float score = warp_sum(dot) * s.scale;
    const float m_new = fmaxf(m, score);
    const float correction = expf(m - m_new);  // 0 on the first key (m = -inf)
    const float p = expf(score - m_new);
    l = l * correction + p;
#pragma unroll
    for (int e = 0; e < kMaxPerLane; ++e) {
      const int64_t d = lane + 32 * e;
      if (d < D) acc[e] = acc[e] * correction + p * cache_value(vj[d]);
    }
    m = m_new;
  }
  const float inv = 1.0f / l;  // l >= 1: the largest score contributes exp(0)
  float* oh = out + unit * D;
#pragma unroll
  for (int e = 0; e < kMaxPerLane; ++e) {
    const int64_t d = lane + 32 * e;
    if (d < D) oh[d] = acc[e] * inv;
  }
}

template <typename CT>
void write_cache(CT* k_cache, CT* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                 int64_t kv_dim, cudaStream_t stream) {
  MEDIX_CHECK(T >= 0 && kv_dim > 0, "kv_cache_write: bad shape T=", T, " kv_dim=", kv_dim);
  if (T == 0) return;
  kv_cache_write_kernel<<<static_cast<unsigned int>(T), 128, 0, stream>>>(k_cache, v_cache, k, v, slots, kv_dim);
  MEDIX_CUDA_LAUNCHED("kv_cache_write");
}

template <typename CT>
void attend(float* out, const float* q, const CT* k_cache, const CT* v_cache, const PagedAttentionShape& s,
            cudaStream_t stream) {
  MEDIX_CHECK(s.T >= 0 && s.n_heads > 0 && s.n_kv_heads > 0 && s.n_heads % s.n_kv_heads == 0 && s.block_size > 0,
              "paged_attention_forward: bad shape n_heads=", s.n_heads, " n_kv_heads=", s.n_kv_heads,
              " block_size=", s.block_size);
  MEDIX_CHECK(s.head_dim > 0 && s.head_dim <= 32 * kMaxPerLane, "paged_attention_forward: head_dim ", s.head_dim,
              " is outside [1, ", 32 * kMaxPerLane, "]");
  if (s.T == 0) return;
  paged_attention_kernel<<<blocks_for(s.T * s.n_heads, kWarpsPerBlock), 32 * kWarpsPerBlock, 0, stream>>>(
      out, q, k_cache, v_cache, s);
  MEDIX_CUDA_LAUNCHED("paged_attention_forward");
}

// The bf16 entries' caches as the kernels read them (raw bits).
const uint16_t* bits(const bf16* p) { return reinterpret_cast<const uint16_t*>(p); }
uint16_t* bits(bf16* p) { return reinterpret_cast<uint16_t*>(p); }

}  // namespace

void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                    int64_t kv_dim, cudaStream_t stream) {
  write_cache(k_cache, v_cache, k, v, slots, T, kv_dim, stream);
}
void kv_cache_write(bf16* k_cache, bf16* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                    int64_t kv_dim, cudaStream_t stream) {
  write_cache(bits(k_cache), bits(v_cache), k, v, slots, T, kv_dim, stream);
}
void paged_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                             const PagedAttentionShape& s, cudaStream_t stream) {
  attend(out, q, k_cache, v_cache, s, stream);
}
void paged_attention_forward(float* out, const float* q, const bf16* k_cache, const bf16* v_cache,
                             const PagedAttentionShape& s, cudaStream_t stream) {
  attend(out, q, bits(k_cache), bits(v_cache), s, stream);
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(KvCacheWrite, cuda::kv_cache_write);
MEDIX_CUDA_OP(PagedAttentionForward, cuda::paged_attention_forward);
MEDIX_CUDA_OP(KvCacheWriteBf16, cuda::kv_cache_write);
MEDIX_CUDA_OP(PagedAttentionForwardBf16, cuda::paged_attention_forward);

}  // namespace medix::cuda
