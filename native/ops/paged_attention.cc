// Paged attention on the CPU: one task per (token, kv head) computes the scores of the query heads
// sharing that kv head against the token's visible keys, a softmax, and the weighted sum of values.
// Scores are plain dot products (8 lanes wide): a decode row has a single query, so there is no
// matrix product to tile, and walking keys block by block follows the cache layout. One template
// serves the f32 and the bf16 cache: a bf16 key or value widens to f32 as it is loaded.
#include "paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/bf16.h"
#include "../core/simd.h"
#include "../core/threads.h"

namespace medix::cpu {

void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                    int64_t kv_dim) {
  for (int64_t t = 0; t < T; ++t) {
    std::memcpy(k_cache + static_cast<int64_t>(slots[t]) * kv_dim, k + t * kv_dim, sizeof(float) * kv_dim);
    std::memcpy(v_cache + static_cast<int64_t>(slots[t]) * kv_dim, v + t * kv_dim, sizeof(float) * kv_dim);
  }
}

void kv_cache_write_bf16(uint16_t* k_cache, uint16_t* v_cache, const float* k, const float* v, const int32_t* slots,
                         int64_t T, int64_t kv_dim) {
  for (int64_t t = 0; t < T; ++t) {
    f32_to_bf16(k_cache + static_cast<int64_t>(slots[t]) * kv_dim, k + t * kv_dim, kv_dim);
    f32_to_bf16(v_cache + static_cast<int64_t>(slots[t]) * kv_dim, v + t * kv_dim, kv_dim);
  }
}

namespace {

using simd::v8f;

inline float widen(float x) { return x; }
inline float widen(uint16_t x) { return bf16_to_f32_scalar(x); }

// a . b over D values: 8-lane partial sums in order, the lanes summed, then the D % 8 tail.
template <typename KV>
inline float dot(const float* a, const KV* b, int64_t D) {
  v8f acc{};
  int64_t d = 0;
  for (; d + simd::kLanes <= D; d += simd::kLanes) acc += simd::load(a + d) * simd::load(b + d);
  float sum = simd::hsum(acc);
  for (; d < D; ++d) sum += a[d] * widen(b[d]);
  return sum;
}

// acc[0, D) += p * v[0, D).
template <typename KV>
inline void axpy(float* acc, float p, const KV* v, int64_t D) {
  int64_t d = 0;
  for (; d + simd::kLanes <= D; d += simd::kLanes) simd::store(acc + d, simd::load(acc + d) + p * simd::load(v + d));
  for (; d < D; ++d) acc[d] += p * widen(v[d]);
}

template <typename KV>
void paged_attention(float* out, const float* q, const KV* k_cache, const KV* v_cache, const PagedAttentionShape& s) {
  const int64_t D = s.head_dim, group = s.n_heads / s.n_kv_heads, kv_dim = s.n_kv_heads * D;
  const int64_t units = s.T * s.n_kv_heads;
  int64_t longest = 0;
  for (int64_t t = 0; t < s.T; ++t) longest = std::max<int64_t>(longest, s.n_keys[t]);
  parallel_for(
      units,
      [&](int64_t u0, int64_t u1) {
        // Scores of the group's query heads, [group, longest], then their weighted sums of values.
        std::vector<float> p(static_cast<size_t>(group * longest));
        std::vector<float> acc(static_cast<size_t>(group * D));
        for (int64_t u = u0; u < u1; ++u) {
          const int64_t t = u / s.n_kv_heads, kvh = u % s.n_kv_heads, n = s.n_keys[t];
          const int32_t* table = s.block_tables + static_cast<int64_t>(s.seq_of_token[t]) * s.max_blocks;
          const float* qt = q + (t * s.n_heads + kvh * group) * D;  // the group's heads are adjacent
          // Keys block by block, each read once for every head of the group.
          for (int64_t j0 = 0; j0 < n; j0 += s.block_size) {
            const int64_t base = static_cast<int64_t>(table[j0 / s.block_size]) * s.block_size - j0;
            for (int64_t j = j0; j < std::min(n, j0 + s.block_size); ++j) {
              const KV* kj = k_cache + (base + j) * kv_dim + kvh * D;
              for (int64_t h = 0; h < group; ++h) p[h * longest + j] = dot(qt + h * D, kj, D) * s.scale;
            }
          }
          // Softmax per head; the max subtracted before exp: no term exceeds 1, the sum (>= 1)
          // cannot overflow.
          for (int64_t h = 0; h < group; ++h) {
            float* ph = p.data() + h * longest;
            const v8f m = simd::splat(simd::row_max(ph, n));
            v8f sum{};
            int64_t j = 0;
            for (; j + simd::kLanes <= n; j += simd::kLanes) {
              const v8f e = simd::exp8(simd::load(ph + j) - m);
              simd::store(ph + j, e);
              sum += e;
            }
            float total = simd::hsum(sum);
            for (; j < n; ++j) {
              ph[j] = std::exp(ph[j] - m[0]);
              total += ph[j];
            }
            const float inv = 1.0f / total;
            for (j = 0; j < n; ++j) ph[j] *= inv;
          }
          std::fill(acc.begin(), acc.end(), 0.0f);
          for (int64_t j0 = 0; j0 < n; j0 += s.block_size) {
            const int64_t base = static_cast<int64_t>(table[j0 / s.block_size]) * s.block_size - j0;
            for (int64_t j = j0; j < std::min(n, j0 + s.block_size); ++j) {
              const KV* vj = v_cache + (base + j) * kv_dim + kvh * D;
              for (int64_t h = 0; h < group; ++h) axpy(acc.data() + h * D, p[h * longest + j], vj, D);
            }
          }
          std::copy(acc.begin(), acc.end(), out + (t * s.n_heads + kvh * group) * D);
        }
      },
      // A task gets at least ~64K flops (a decode row over a short context is less than that per
      // kv head): waking a thread costs more than such a task.
      std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, 4 * group * longest * D)));
}

}  // namespace

void paged_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                             const PagedAttentionShape& s) {
  paged_attention(out, q, k_cache, v_cache, s);
}

void paged_attention_forward_bf16(float* out, const float* q, const uint16_t* k_cache, const uint16_t* v_cache,
                                  const PagedAttentionShape& s) {
  paged_attention(out, q, k_cache, v_cache, s);
}

}  // namespace medix::cpu
