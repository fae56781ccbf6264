// Fused log-probs + entropy over bf16 hidden states and head, chunked over the vocabulary with the
// logits GEMM in cuBLASLt (kernels.h: logprob_forward_blas / logprob_backward_blas).
//
// Forward, per vocabulary chunk: z = hidden . head_chunk^T / temperature into an fp32 [T, cols]
// buffer, then one block per token folds the chunk into running statistics (max m, sum of e^(z-m) s,
// sum of e^(z-m) (z-m) u, relative to m as on the CPU so that entropy does not cancel) and picks up
// the target's logit when it falls in the chunk. After the last chunk: lse = m + log s,
// logp = z_target - lse, entropy = log s - u / s. Backward recomputes each
// chunk, turns it into dz (bf16, the GEMMs' operand) and accumulates dhidden and dhead in fp32:
//   dz_j = g (1[j = target] - p_j) - h p_j (z_j - lse + entropy),  p_j = e^(z_j - lse),
// with g = dlogp (0 for a token without target) and h = dentropy.
#include "common.cuh"

namespace medix::cuda {
namespace {

constexpr int kRowThreads = 256;

struct RunningStats {
  float *m, *s, *u, *z_target;
};

__global__ void __launch_bounds__(kRowThreads)
    chunk_stats_kernel(RunningStats st, const float* __restrict__ z, int64_t ld, int64_t cols, int64_t v0,
                       const int32_t* __restrict__ targets, bool first) {
  __shared__ float shared[32];
  const int64_t t = blockIdx.x;
  const float* row = z + t * ld;
  float local_max = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) local_max = fmaxf(local_max, row[j]);
  const float chunk_max = block_max(local_max, shared);
  const float m_new = first ? chunk_max : fmaxf(st.m[t], chunk_max);
  float se = 0.0f, ue = 0.0f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float d = row[j] - m_new;
    const float e = __expf(d);
    se += e;
    ue += e * d;
  }
  const float S = block_sum(se, shared);
  const float U = block_sum(ue, shared);
  if (threadIdx.x == 0) {
    if (first) {
      st.s[t] = S;
      st.u[t] = U;
    } else {  // re-base on m_new: e' = e keep, (z - m_new) = (z - m_old) + shift
      const float shift = st.m[t] - m_new, keep = __expf(shift), s_old = st.s[t];
      st.s[t] = s_old * keep + S;
      st.u[t] = keep * (st.u[t] + s_old * shift) + U;
    }
    st.m[t] = m_new;
    const int64_t target = targets[t];
    if (target >= v0 && target < v0 + cols) st.z_target[t] = row[target - v0];
  }
}

__global__ void finish_kernel(float* logp, float* entropy, float* lse, RunningStats st,
                              const int32_t* __restrict__ targets, int64_t T) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= T) return;
  const float log_s = logf(st.s[t]), l = st.m[t] + log_s;
  lse[t] = l;
  logp[t] = targets[t] < 0 ? 0.0f : st.z_target[t] - l;
  if (entropy) entropy[t] = log_s - st.u[t] / st.s[t];
}

__global__ void __launch_bounds__(kRowThreads)
    chunk_dlogits_kernel(bf16* __restrict__ dz, const float* __restrict__ z, int64_t ld, int64_t cols, int64_t v0,
                         const int32_t* __restrict__ targets, const float* __restrict__ dlogp,
                         const float* __restrict__ dentropy, const float* __restrict__ lse,
                         const float* __restrict__ entropy) {
  const int64_t t = blockIdx.x;
  const int64_t target = targets[t];
  const float g = target < 0 ? 0.0f : dlogp[t];
  const float h = dentropy ? dentropy[t] : 0.0f;
  const float shift = dentropy ? entropy[t] - lse[t] : 0.0f;
  const float l = lse[t];
  const float* row = z + t * ld;
  bf16* out = dz + t * ld;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float p = __expf(row[j] - l);
    float d = -g * p - h * p * (row[j] + shift);
    if (v0 + j == target) d += g;
    out[j] = __float2bfloat16_rn(d);
  }
}

void check_shape(const LogprobShape& s, const char* fn) {
  MEDIX_CHECK(s.T >= 0 && s.hidden > 0 && s.vocab > 0, fn, ": T, hidden, vocab must be >= 0, > 0, > 0");
  MEDIX_CHECK(s.temperature > 0, fn, ": temperature must be > 0, got ", s.temperature);
  MEDIX_CHECK(s.vocab_chunk > 0 && s.vocab_chunk % 128 == 0, fn, ": vocab_chunk must be a positive multiple of ",
              "128, got ", s.vocab_chunk);
  MEDIX_CHECK(s.T <= 2147483647, fn, ": T = ", s.T, " is above the grid limit");
}

// z[T, cols] = hidden . head[v0 : v0 + cols]^T / temperature, rows `ld` apart. The chunk buffers keep
// ld = the full chunk even for the last, shorter chunk: rows stay 16-byte aligned, as cuBLASLt's bf16
// tensor-core kernels need of an operand's leading dimension.
void chunk_logits(float* z, int64_t ld, const bf16* hidden, const bf16* head, int64_t v0, int64_t cols,
                  const LogprobShape& s, cudaStream_t stream) {
  blas_gemm(GemmType::BF16, GemmType::F32, false, true, s.T, cols, s.hidden, 1.0f / s.temperature, hidden, s.hidden,
            head + v0 * s.hidden, s.hidden, 0.0f, z, ld, stream);
}

}  // namespace

void logprob_forward_blas(float* logp, float* entropy, float* lse, const bf16* hidden, const bf16* head,
                          const int32_t* targets, const LogprobShape& s, cudaStream_t stream) {
  check_shape(s, "logprob_forward_blas");
  if (s.T == 0) return;
  const int64_t chunk = std::min(s.vocab_chunk, s.vocab);
  Scratch<float> z(s.T * chunk, stream, "logprob_forward_blas: chunk buffer");
  Scratch<float> stats(4 * s.T, stream, "logprob_forward_blas: statistics");
  const RunningStats st{stats.get(), stats.get() + s.T, stats.get() + 2 * s.T, stats.get() + 3 * s.T};
  for (int64_t v0 = 0; v0 < s.vocab; v0 += chunk) {
    const int64_t cols = std::min(chunk, s.vocab - v0);
    chunk_logits(z.get(), chunk, hidden, head, v0, cols, s, stream);
    chunk_stats_kernel<<<static_cast<unsigned int>(s.T), kRowThreads, 0, stream>>>(st, z.get(), chunk, cols, v0,
                                                                                   targets, v0 == 0);
    MEDIX_CUDA_LAUNCHED("logprob_forward_blas (statistics)");
  }
  finish_kernel<<<blocks_for(s.T), kThreads, 0, stream>>>(logp, entropy, lse, st, targets, s.T);
  MEDIX_CUDA_LAUNCHED("logprob_forward_blas (finish)");
}

void logprob_backward_blas(float* dhidden, float* dhead, const float* dlogp, const float* dentropy, const bf16* hidden,
                           const bf16* head, const int32_t* targets, const float* lse, const float* entropy,
                           const LogprobShape& s, cudaStream_t stream) {
  check_shape(s, "logprob_backward_blas");
  MEDIX_CHECK(!dentropy == !entropy, "logprob_backward_blas: dentropy and entropy must both be given or both null");
  if (s.T == 0) return;
  const int64_t chunk = std::min(s.vocab_chunk, s.vocab);
  const float inv_temp = 1.0f / s.temperature;
  Scratch<float> z(s.T * chunk, stream, "logprob_backward_blas: chunk buffer");
  Scratch<bf16> dz(s.T * chunk, stream, "logprob_backward_blas: chunk gradient");
  for (int64_t v0 = 0; v0 < s.vocab; v0 += chunk) {
    const int64_t cols = std::min(chunk, s.vocab - v0);
    chunk_logits(z.get(), chunk, hidden, head, v0, cols, s, stream);
    chunk_dlogits_kernel<<<static_cast<unsigned int>(s.T), kRowThreads, 0, stream>>>(
        dz.get(), z.get(), chunk, cols, v0, targets, dlogp, dentropy, lse, entropy);
    MEDIX_CUDA_LAUNCHED("logprob_backward_blas (dlogits)");
    // z = hidden head^T / temperature: dhidden += dz head / temperature, dhead += dz^T hidden / temperature.
    blas_gemm(GemmType::BF16, GemmType::F32, false, false, s.T, s.hidden, cols, inv_temp, dz.get(), chunk,
              head + v0 * s.hidden, s.hidden, 1.0f, dhidden, s.hidden, stream);
    blas_gemm(GemmType::BF16, GemmType::F32, true, false, cols, s.hidden, s.T, inv_temp, dz.get(), chunk, hidden,
              s.hidden, 1.0f, dhead + v0 * s.hidden, s.hidden, stream);
  }
}

}  // namespace medix::cuda
