// Fused output head + log-softmax + gather + entropy (logprob.h), forward and backward, without the
// [T, V] logits: the same blocking as the CPU code. For each block of token_chunk tokens x
// vocab_chunk vocabulary entries, the tiled GEMM (linear.cu) writes the block's logits to scratch,
// then one thread block per token row folds them into that token's online softmax statistics
//   m = running max, s = sum exp(z - m), w = sum exp(z - m) (z - m)     (s, w in double)
// so lse = m + log s and entropy = log s - w / s. Backward recomputes each block, turns it into
// d(loss)/d(logits) in place and pushes it through two GEMMs into dhidden and dhead. Every sum has
// a fixed order; the exponentials are expf (the CPU uses its own polynomial; they agree to ~1 ulp).
#include <algorithm>
#include <cmath>

#include "backend_op.cuh"
#include "common.cuh"

namespace medix::cuda {
namespace {

constexpr int kRowThreads = 256;

struct RowStats {  // one token's statistics, in scratch for the whole token chunk
  float* m;
  double* s;
  double* w;
  float* target_logit;
};

// Folds row r of the block z[rows, cols] (vocabulary entries v0 .. v0+cols) into the token's stats.
__global__ void __launch_bounds__(kRowThreads)
    stats_kernel(RowStats st, const float* z, int64_t cols, int64_t v0, const int32_t* targets) {
  __shared__ float shared_f[32];
  const int64_t r = blockIdx.x;
  const float* row = z + r * cols;
  float bm = -INFINITY;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) bm = fmaxf(bm, row[j]);
  bm = block_max(bm, shared_f);
  const float m_old = st.m[r];
  double s = st.s[r], w = st.w[r];
  float m = m_old;
  if (bm > m_old) {
    if (s > 0.0) {  // re-base on the new max: e' = e a, (z - m') = (z - m) + (m - m')
      const double shift = static_cast<double>(m_old) - bm;
      const double a = exp(shift);
      w = a * (w + s * shift);
      s *= a;
    }
    m = bm;
  }
  float bs = 0.0f, bw = 0.0f;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float d = row[j] - m;
    const float e = expf(d);
    bs += e;
    bw += e * d;
  }
  bs = block_sum(bs, shared_f);
  bw = block_sum(bw, shared_f);
  if (threadIdx.x == 0) {
    st.m[r] = m;
    st.s[r] = s + bs;
    st.w[r] = w + bw;
    const int64_t target = targets[r];
    if (target >= v0 && target < v0 + cols) st.target_logit[r] = row[target - v0];
  }
}

__global__ void init_stats_kernel(RowStats st, int64_t rows) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  st.m[r] = -INFINITY;
  st.s[r] = 0.0;
  st.w[r] = 0.0;
  st.target_logit[r] = 0.0f;
}

// lse = m + log s, logp = z[target] - lse (0 without target), entropy = log s - w / s.
__global__ void finish_kernel(float* logp, float* entropy, float* lse, RowStats st, const int32_t* targets,
                              int64_t rows) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const double log_s = log(st.s[r]);
  const float l = static_cast<float>(st.m[r] + log_s);
  lse[r] = l;
  logp[r] = targets[r] < 0 ? 0.0f : st.target_logit[r] - l;
  if (entropy) entropy[r] = static_cast<float>(log_s - st.w[r] / st.s[r]);
}

// In place, row r of the block becomes dz = g (1[j = target] - p) - h p (z - lse + entropy),
// p = exp(z - lse), for loss = g logp + h entropy (dH/dz_j = -p_j (log p_j + H)).
__global__ void dlogits_kernel(float* z, int64_t cols, int64_t v0, const float* dlogp, const float* dentropy,
                               const int32_t* targets, const float* lse, const float* entropy) {
  const int64_t r = blockIdx.x;
  const int64_t target = targets[r];
  const float g = target < 0 ? 0.0f : dlogp[r];  // no target: logp = 0 by definition, no gradient
  const float h = dentropy ? dentropy[r] : 0.0f;
  const float l = lse[r];
  const float c = (dentropy ? entropy[r] : 0.0f) - l;
  float* row = z + r * cols;
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    const float x = row[j];
    const float p = expf(x - l);
    float d = -(g * p) - h * (p * (x + c));
    if (v0 + j == target) d += g;
    row[j] = d;
  }
}

void check_args(const LogprobShape& s, const char* fn) {
  MEDIX_CHECK(s.T >= 0 && s.hidden > 0 && s.vocab > 0, fn, ": bad shape T=", s.T, " hidden=", s.hidden,
              " vocab=", s.vocab);
  MEDIX_CHECK(s.temperature > 0 && std::isfinite(s.temperature), fn, ": temperature must be > 0, got ", s.temperature);
  MEDIX_CHECK(s.token_chunk >= 0 && s.vocab_chunk >= 0, fn, ": token_chunk and vocab_chunk must be >= 0 (0: default)");
}

// A chunk of 0 takes the default, as logprob.h says (the model passes 0). The CPU's defaults are sized
// for a core's L2; a GPU wants blocks large enough to fill its SMs: 1024 x 2048 floats, 8 MiB.
constexpr int64_t kDefaultTokenChunk = 1024;
constexpr int64_t kDefaultVocabChunk = 2048;

struct Chunks {
  int64_t tokens, vocab;
};

Chunks chunks(const LogprobShape& s) {
  return {std::min(s.token_chunk > 0 ? s.token_chunk : kDefaultTokenChunk, s.T),
          std::min(s.vocab_chunk > 0 ? s.vocab_chunk : kDefaultVocabChunk, s.vocab)};
}

}  // namespace

size_t logprob_scratch_bytes(const LogprobShape& s) {
  const Chunks c = chunks(s);
  return sizeof(float) * static_cast<size_t>(c.tokens * c.vocab);
}

void logprob_forward(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                     const int32_t* targets, const LogprobShape& s, cudaStream_t stream) {
  check_args(s, "cuda logprob_forward");
  if (s.T == 0) return;
  const auto [tc, vc] = chunks(s);
  Scratch<float> block(tc * vc, stream, "logprob_forward (block)");
  Scratch<float> m(tc, stream, "logprob_forward (stats)"), target_logit(tc, stream, "logprob_forward (stats)");
  Scratch<double> sum(tc, stream, "logprob_forward (stats)"), wsum(tc, stream, "logprob_forward (stats)");
  const RowStats st{m.get(), sum.get(), wsum.get(), target_logit.get()};
  for (int64_t t0 = 0; t0 < s.T; t0 += tc) {
    const int64_t rows = std::min(tc, s.T - t0);
    init_stats_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(st, rows);
    MEDIX_CUDA_LAUNCHED("logprob_forward (init)");
    for (int64_t v0 = 0; v0 < s.vocab; v0 += vc) {
      const int64_t cols = std::min(vc, s.vocab - v0);
      gemm(false, true, rows, cols, s.hidden, 1.0f / s.temperature, hidden + t0 * s.hidden, s.hidden,
           head + v0 * s.hidden, s.hidden, 0.0f, block.get(), cols, stream);
      stats_kernel<<<static_cast<unsigned int>(rows), kRowThreads, 0, stream>>>(st, block.get(), cols, v0,
                                                                                targets + t0);
      MEDIX_CUDA_LAUNCHED("logprob_forward (stats)");
    }
    finish_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(logp + t0, entropy ? entropy + t0 : nullptr, lse + t0, st,
                                                             targets + t0, rows);
    MEDIX_CUDA_LAUNCHED("logprob_forward (finish)");
  }
}

void logprob_backward(float* dhidden, float* dhead, const float* dlogp, const float* dentropy, const float* hidden,
                      const float* head, const int32_t* targets, const float* lse, const float* entropy,
                      const LogprobShape& s, cudaStream_t stream) {
  check_args(s, "cuda logprob_backward");
  if (s.T == 0) return;
  const bool with_entropy = dentropy && entropy;
  const auto [tc, vc] = chunks(s);
  const float inv_temp = 1.0f / s.temperature;
  Scratch<float> block(tc * vc, stream, "logprob_backward (block)");
  for (int64_t t0 = 0; t0 < s.T; t0 += tc) {
    const int64_t rows = std::min(tc, s.T - t0);
    for (int64_t v0 = 0; v0 < s.vocab; v0 += vc) {
      const int64_t cols = std::min(vc, s.vocab - v0);
      float* dz = block.get();
      gemm(false, true, rows, cols, s.hidden, inv_temp, hidden + t0 * s.hidden, s.hidden, head + v0 * s.hidden,
           s.hidden, 0.0f, dz, cols, stream);
      dlogits_kernel<<<static_cast<unsigned int>(rows), kRowThreads, 0, stream>>>(
          dz, cols, v0, dlogp + t0, with_entropy ? dentropy + t0 : nullptr, targets + t0, lse + t0,
          with_entropy ? entropy + t0 : nullptr);
      MEDIX_CUDA_LAUNCHED("logprob_backward (dlogits)");
      // z = x head^T / temperature: dx += dz head / temperature, dhead += dz^T x / temperature.
      gemm(false, false, rows, s.hidden, cols, inv_temp, dz, cols, head + v0 * s.hidden, s.hidden, 1.0f,
           dhidden + t0 * s.hidden, s.hidden, stream);
      gemm(true, false, cols, s.hidden, rows, inv_temp, dz, cols, hidden + t0 * s.hidden, s.hidden, 1.0f,
           dhead + v0 * s.hidden, s.hidden, stream);
    }
  }
}

// The CUDA backend's ops (core/backend_op.h): the scratch they report is one [token_chunk, vocab_chunk]
// logits block.
namespace {

size_t backend_logprob_forward(Backend& be, float* logp, float* entropy, float* lse, const float* hidden,
                               const float* head, const int32_t* targets, const LogprobShape& s) {
  be.bind_thread();
  logprob_forward(logp, entropy, lse, hidden, head, targets, s);
  return logprob_scratch_bytes(s);
}

size_t backend_logprob_backward(Backend& be, float* dhidden, float* dhead, const float* dlogp, const float* dentropy,
                                const float* hidden, const float* head, const int32_t* targets, const float* lse,
                                const float* entropy, const LogprobShape& s) {
  be.bind_thread();
  logprob_backward(dhidden, dhead, dlogp, dentropy, hidden, head, targets, lse, entropy, s);
  return logprob_scratch_bytes(s);
}

}  // namespace

MEDIX_BACKEND_OP("cuda", LogprobForward, backend_logprob_forward);
MEDIX_BACKEND_OP("cuda", LogprobBackward, backend_logprob_backward);

}  // namespace medix::cuda
