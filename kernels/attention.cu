// Grouped-query attention over packed variable-length sequences (attention.h), causal or, with
// s.causal false, bidirectional within each sequence (the vision tower), forward and backward,
// flash-style: scores are never stored. Forward keeps an online softmax per query row (running max m,
// running sum l, unnormalised output) and saves lse = m + log l; backward recomputes
// P = exp(S - lse) and, with delta_i = dO_i . O_i,
//   dS = P (dO V^T - delta),  dQ += scale dS K,  dK += scale dS^T Q,  dV += P^T dO.
//
// This first version maps one warp to one row (a query row for forward and dQ, a key row for dK and
// dV), lane `lane` holding elements c*32 + lane of it (kPer = ceil(head_dim / 32) of them; past
// head_dim a lane holds 0 and reads nothing, so any head_dim up to 256 runs, e.g. the 72 of the
// Qwen3-VL 4B/8B vision towers): simple, and every output has exactly one owner that visits keys (or
// queries) in order, so there are no atomics and the bits are the same run to run.
// These kernels are the fp32 path, exact to fp32 rounding. A shape with bf16_operands (the model's bf16
// compute) runs attention_flash.cu's tensor-core kernels instead, when they fit the device;
// MEDIX_CUDA_ATTENTION=rowwise keeps these, =flash insists on those (read at each call, as
// MEDIX_CUDA_LINEAR is, so one program can compare both).
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include "attention_flash.h"
#include "backend_op.cuh"
#include "common.cuh"
#include "core/cu_seqlens.h"
#include "ops/attention.h"

namespace medix::cuda {
namespace {

constexpr int kWarps = 4;             // warps (rows) per block
constexpr int64_t kMaxHeadDim = 256;  // 8 elements per lane

// The sequence holding token t: the largest s with cu[s] <= t (skipping empty sequences).
__device__ inline int64_t sequence_of(const int32_t* cu, int64_t n_seqs, int64_t t) {
  int64_t lo = 0, hi = n_seqs - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (cu[mid] <= t)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

struct Dims {
  int64_t T, H, KV, n_seqs;
  int D;  // head_dim: elements c*32 + lane < D are the row's
  float scale;
  bool causal;  // false: every key of the sequence is visible (the vision tower)
};

// Lane `lane` holds elements c*32 + lane, c < kPer, of a row of D <= 32 kPer elements; the others are
// neither read nor written.
__device__ inline bool in_row(int c, int lane, int D) { return c * 32 + lane < D; }

template <int kPer>
__device__ inline float row_dot(const float (&a)[kPer], const float* b, int lane, int D) {
  float s = 0.0f;
#pragma unroll
  for (int c = 0; c < kPer; ++c)
    if (in_row(c, lane, D)) s += a[c] * b[c * 32 + lane];
  return warp_sum(s);
}

template <int kPer>
__device__ inline void load_row(float (&a)[kPer], const float* src, int lane, int D) {
#pragma unroll
  for (int c = 0; c < kPer; ++c) a[c] = in_row(c, lane, D) ? src[c * 32 + lane] : 0.0f;
}

// One warp per (query token t, head h).
template <int kPer>
__global__ void attention_forward_kernel(float* out, float* lse, const float* q, const float* k, const float* v,
                                         const int32_t* cu, Dims d) {
  const int64_t D = d.D;
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (w >= d.T * d.H) return;
  const int64_t t = w / d.H, h = w % d.H, kvh = h / (d.H / d.KV);
  const int64_t seq = sequence_of(cu, d.n_seqs, t), start = cu[seq], last = d.causal ? t : cu[seq + 1] - 1;
  float qv[kPer], acc[kPer] = {};
  load_row(qv, q + w * D, lane, d.D);
  float m = -INFINITY, l = 0.0f;
  for (int64_t j = start; j <= last; ++j) {
    const float s = d.scale * row_dot(qv, k + (j * d.KV + kvh) * D, lane, d.D);
    const float m_new = fmaxf(m, s);
    const float correction = expf(m - m_new), p = expf(s - m_new);  // exp(-inf) = 0 on the first key
    l = l * correction + p;
    const float* vj = v + (j * d.KV + kvh) * D;
#pragma unroll
    for (int c = 0; c < kPer; ++c)
      if (in_row(c, lane, d.D)) acc[c] = acc[c] * correction + p * vj[c * 32 + lane];
    m = m_new;
  }
  const float inv = 1.0f / l;
#pragma unroll
  for (int c = 0; c < kPer; ++c)
    if (in_row(c, lane, d.D)) out[w * D + c * 32 + lane] = acc[c] * inv;
  if (lane == 0) lse[w] = m + logf(l);
}

// One warp per (query token t, head h): delta = dO . O (saved for the dK/dV pass) and dQ.
template <int kPer>
__global__ void attention_dq_kernel(float* dq, float* delta, const float* dout, const float* out, const float* lse,
                                    const float* q, const float* k, const float* v, const int32_t* cu, Dims d) {
  const int64_t D = d.D;
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (w >= d.T * d.H) return;
  const int64_t t = w / d.H, h = w % d.H, kvh = h / (d.H / d.KV);
  const int64_t seq = sequence_of(cu, d.n_seqs, t), start = cu[seq], last = d.causal ? t : cu[seq + 1] - 1;
  float qv[kPer], dov[kPer], acc[kPer] = {};
  load_row(qv, q + w * D, lane, d.D);
  load_row(dov, dout + w * D, lane, d.D);
  const float dl = row_dot(dov, out + w * D, lane, d.D);
  if (lane == 0) delta[w] = dl;
  const float l = lse[w];
  for (int64_t j = start; j <= last; ++j) {
    const float* kj = k + (j * d.KV + kvh) * D;
    const float p = expf(d.scale * row_dot(qv, kj, lane, d.D) - l);
    const float ds = p * (row_dot(dov, v + (j * d.KV + kvh) * D, lane, d.D) - dl);
#pragma unroll
    for (int c = 0; c < kPer; ++c)
      if (in_row(c, lane, d.D)) acc[c] += ds * kj[c * 32 + lane];
  }
#pragma unroll
  for (int c = 0; c < kPer; ++c)
    if (in_row(c, lane, d.D)) dq[w * D + c * 32 + lane] += d.scale * acc[c];
}

// One warp per (key token j, kv head): dK and dV over the query heads sharing it and the queries
// of its sequence that see it (i >= j when causal, all otherwise), heads then queries in order.
template <int kPer>
__global__ void attention_dkv_kernel(float* dk, float* dv, const float* delta, const float* dout, const float* lse,
                                     const float* q, const float* k, const float* v, const int32_t* cu, Dims d) {
  const int64_t D = d.D;
  const int64_t w = static_cast<int64_t>(blockIdx.x) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (w >= d.T * d.KV) return;
  const int64_t j = w / d.KV, kvh = w % d.KV, group = d.H / d.KV;
  const int64_t seq = sequence_of(cu, d.n_seqs, j), first = d.causal ? j : cu[seq], end = cu[seq + 1];
  float kj[kPer], vv[kPer], dk_acc[kPer] = {}, dv_acc[kPer] = {};
  load_row(kj, k + w * D, lane, d.D);
  load_row(vv, v + w * D, lane, d.D);
  for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
    for (int64_t i = first; i < end; ++i) {
      const int64_t row = i * d.H + h;
      const float* qi = q + row * D;
      const float* doi = dout + row * D;
      const float p = expf(d.scale * row_dot(kj, qi, lane, d.D) - lse[row]);
      const float ds = p * (row_dot(vv, doi, lane, d.D) - delta[row]);
#pragma unroll
      for (int c = 0; c < kPer; ++c) {
        if (!in_row(c, lane, d.D)) continue;
        dv_acc[c] += p * doi[c * 32 + lane];
        dk_acc[c] += ds * qi[c * 32 + lane];
      }
    }
  }
#pragma unroll
  for (int c = 0; c < kPer; ++c) {
    if (!in_row(c, lane, d.D)) continue;
    dk[w * D + c * 32 + lane] += d.scale * dk_acc[c];
    dv[w * D + c * 32 + lane] += dv_acc[c];
  }
}

// cu_seqlens is checked on the host copy the caller passes in AttentionShape (as the CPU does);
// the kernels read the device copy.
Dims check_shape(const AttentionShape& s, const char* fn) {
  MEDIX_CHECK(s.T >= 0 && s.n_heads > 0 && s.n_kv_heads > 0, fn, ": bad shape (T ", s.T, ", heads ", s.n_heads,
              ", kv heads ", s.n_kv_heads, ")");
  MEDIX_CHECK(s.head_dim >= 1 && s.head_dim <= kMaxHeadDim, fn, ": head_dim must be in [1, ", kMaxHeadDim,
              "] on the GPU, got ", s.head_dim);
  MEDIX_CHECK(s.n_heads % s.n_kv_heads == 0, fn, ": n_heads (", s.n_heads, ") must be a multiple of n_kv_heads (",
              s.n_kv_heads, ")");
  check_cu_seqlens(s.cu_seqlens, s.n_seqs + 1, s.T, fn, "cu_seqlens");
  return {s.T, s.n_heads, s.n_kv_heads, s.n_seqs, static_cast<int>(s.head_dim), s.scale, s.causal};
}

// Calls launch(std::integral_constant<int, ceil(head_dim / 32)>) (1 to 8; check_shape bounds head_dim).
template <typename Launch>
void by_head_dim(int64_t head_dim, const Launch& launch) {
  switch ((head_dim + 31) / 32) {
    case 1:
      return launch(std::integral_constant<int, 1>{});
    case 2:
      return launch(std::integral_constant<int, 2>{});
    case 3:
      return launch(std::integral_constant<int, 3>{});
    case 4:
      return launch(std::integral_constant<int, 4>{});
    case 5:
      return launch(std::integral_constant<int, 5>{});
    case 6:
      return launch(std::integral_constant<int, 6>{});
    case 7:
      return launch(std::integral_constant<int, 7>{});
    default:
      return launch(std::integral_constant<int, 8>{});
  }
}

// The tensor-core kernels' plan when this call runs them (plan.fits()), else an empty plan (see the
// file comment).
FlashPlan flash_plan(const AttentionShape& s, const char* fn) {
  const char* env = std::getenv("MEDIX_CUDA_ATTENTION");
  const std::string mode = env ? env : "auto";
  MEDIX_CHECK(mode == "auto" || mode == "flash" || mode == "rowwise",
              "MEDIX_CUDA_ATTENTION must be auto, flash or rowwise, not '", mode, "'");
  if (!s.bf16_operands || mode == "rowwise") return {};
  const FlashPlan plan = flash_attention_plan(s);
  MEDIX_CHECK(plan.fits() || mode != "flash", fn, ": MEDIX_CUDA_ATTENTION=flash, but the kernels for head_dim ",
              s.head_dim, " do not fit this device's shared memory");
  return plan;
}

}  // namespace

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const int32_t* cu_seqlens_device, const AttentionShape& s, cudaStream_t stream) {
  const Dims d = check_shape(s, "cuda attention_forward");
  if (s.T == 0) return;
  const FlashPlan plan = flash_plan(s, "cuda attention_forward");
  if (plan.fits()) return flash_attention_forward(out, lse, q, k, v, cu_seqlens_device, s, plan, stream);
  by_head_dim(s.head_dim, [&](auto per) {
    attention_forward_kernel<decltype(per)::value>
        <<<blocks_for(d.T * d.H, kWarps), 32 * kWarps, 0, stream>>>(out, lse, q, k, v, cu_seqlens_device, d);
  });
  MEDIX_CUDA_LAUNCHED("attention_forward");
}

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const int32_t* cu_seqlens_device,
                        const AttentionShape& s, cudaStream_t stream) {
  const Dims d = check_shape(s, "cuda attention_backward");
  if (s.T == 0) return;
  Scratch<float> delta(d.T * d.H, stream, "attention_backward (scratch)");
  const FlashPlan plan = flash_plan(s, "cuda attention_backward");
  if (plan.fits())
    return flash_attention_backward(dq, dk, dv, delta.get(), dout, out, lse, q, k, v, cu_seqlens_device, s, plan,
                                    stream);
  by_head_dim(s.head_dim, [&](auto per) {
    constexpr int kPer = decltype(per)::value;
    attention_dq_kernel<kPer><<<blocks_for(d.T * d.H, kWarps), 32 * kWarps, 0, stream>>>(
        dq, delta.get(), dout, out, lse, q, k, v, cu_seqlens_device, d);
    MEDIX_CUDA_LAUNCHED("attention_backward (dq)");
    attention_dkv_kernel<kPer><<<blocks_for(d.T * d.KV, kWarps), 32 * kWarps, 0, stream>>>(
        dk, dv, delta.get(), dout, lse, q, k, v, cu_seqlens_device, d);
  });
  MEDIX_CUDA_LAUNCHED("attention_backward (dk, dv)");
}

// The CUDA backend's ops (core/backend_op.h). The model fills an attention shape's cu_seqlens with
// backend memory, as the Backend contract says; the kernels also validate it on the host, so they get
// the caller's host copy where it gave one, else a copy of the device array (a synchronisation, a few
// hundred bytes).
namespace {

struct HostShape {
  std::vector<int32_t> cu;
  AttentionShape shape;
  HostShape(Backend& be, const AttentionShape& s) : shape(s) {
    if (!s.cu_seqlens_host) {
      cu.resize(static_cast<size_t>(s.n_seqs + 1));
      be.to_host(cu.data(), s.cu_seqlens, sizeof(int32_t) * cu.size());
    }
    shape.cu_seqlens = s.cu_seqlens_host ? s.cu_seqlens_host : cu.data();
  }
};

void backend_attention_forward(Backend& be, float* out, float* lse, const float* q, const float* k, const float* v,
                               const AttentionShape& s) {
  be.bind_thread();
  const HostShape h(be, s);
  attention_forward(out, lse, q, k, v, s.cu_seqlens, h.shape);
}

void backend_attention_backward(Backend& be, float* dq, float* dk, float* dv, const float* dout, const float* out,
                                const float* lse, const float* q, const float* k, const float* v,
                                const AttentionShape& s) {
  be.bind_thread();
  const HostShape h(be, s);
  attention_backward(dq, dk, dv, dout, out, lse, q, k, v, s.cu_seqlens, h.shape);
}

}  // namespace

MEDIX_BACKEND_OP("cuda", AttentionForward, backend_attention_forward);
MEDIX_BACKEND_OP("cuda", AttentionBackward, backend_attention_backward);

}  // namespace medix::cuda
