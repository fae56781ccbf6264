// Paged attention on the CPU: one task per (token, kv head) computes the scores of the query heads
// sharing that kv head against the token's visible keys, a softmax, and the weighted sum of values.
// Scores are plain dot products: a decode row has a single query, so there is no matrix product to
// tile, and walking keys block by block follows the cache layout.
#include "paged_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "../core/threads.h"

namespace medix::cpu {

void kv_cache_write(float* k_cache, float* v_cache, const float* k, const float* v, const int32_t* slots, int64_t T,
                    int64_t kv_dim) {
  for (int64_t t = 0; t < T; ++t) {
    std::memcpy(k_cache + static_cast<int64_t>(slots[t]) * kv_dim, k + t * kv_dim, sizeof(float) * kv_dim);
    std::memcpy(v_cache + static_cast<int64_t>(slots[t]) * kv_dim, v + t * kv_dim, sizeof(float) * kv_dim);
  }
}

void paged_attention_forward(float* out, const float* q, const float* k_cache, const float* v_cache,
                             const PagedAttentionShape& s) {
  const int64_t D = s.head_dim, group = s.n_heads / s.n_kv_heads, kv_dim = s.n_kv_heads * D;
  const int64_t units = s.T * s.n_kv_heads;
  int64_t longest = 0;
  for (int64_t t = 0; t < s.T; ++t) longest = std::max<int64_t>(longest, s.n_keys[t]);
  parallel_for(
      units,
      [&](int64_t u0, int64_t u1) {
        std::vector<float> p(static_cast<size_t>(longest));
        std::vector<float> acc(static_cast<size_t>(D));
        for (int64_t u = u0; u < u1; ++u) {
          const int64_t t = u / s.n_kv_heads, kvh = u % s.n_kv_heads, n = s.n_keys[t];
          const int32_t* table = s.block_tables + static_cast<int64_t>(s.seq_of_token[t]) * s.max_blocks;
          auto slot = [&](int64_t j) { return static_cast<int64_t>(table[j / s.block_size]) * s.block_size + j % s.block_size; };
          for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
            const float* qh = q + (t * s.n_heads + h) * D;
            float m = -INFINITY;
            for (int64_t j = 0; j < n; ++j) {
              const float* kj = k_cache + slot(j) * kv_dim + kvh * D;
              float dot = 0.0f;
              for (int64_t d = 0; d < D; ++d) dot += qh[d] * kj[d];
              p[j] = dot * s.scale;
              m = std::max(m, p[j]);
            }
            // Max subtracted before exp: no term exceeds 1, the sum (>= 1) cannot overflow.
            float sum = 0.0f;
            for (int64_t j = 0; j < n; ++j) {
              p[j] = std::exp(p[j] - m);
              sum += p[j];
            }
            std::fill(acc.begin(), acc.end(), 0.0f);
            for (int64_t j = 0; j < n; ++j) {
              const float* vj = v_cache + slot(j) * kv_dim + kvh * D;
              for (int64_t d = 0; d < D; ++d) acc[d] += p[j] * vj[d];
            }
            float* oh = out + (t * s.n_heads + h) * D;
            const float inv = 1.0f / sum;
            for (int64_t d = 0; d < D; ++d) oh[d] = acc[d] * inv;
          }
        }
      },
      // A task gets at least ~64K flops (a decode row over a short context is less than that per
      // kv head): waking a thread costs more than such a task.
      std::max<int64_t>(1, (int64_t(1) << 16) / std::max<int64_t>(1, 4 * group * longest * D)));
}

}  // namespace medix::cpu
