// Mixture-of-experts routing, experts and load-balancing loss (moe.h), forward and backward side by
// side, with the CPU's semantics and orders:
//   - router: one warp per token; softmax with the sum of exponentials in double, top-K by K rounds
//     of a warp argmax (larger probability first, ties to the lower expert index, as the CPU's scan);
//     the top-K sums and the backward's dot products run over k in order in every lane, as on the CPU.
//   - grouping: a stable counting sort without atomics. The assignments are cut in chunks of
//     kSortChunk; each chunk counts its picks per expert, one block turns the counts into the
//     experts' offsets and each chunk's first slot per expert, then each chunk writes its assignments
//     in order. Stable (chunk order, then order inside a chunk), so `order` is the CPU's exactly.
//   - experts: rows gathered by expert, one GEMM per expert and projection (linear_forward_auto and
//     linear_backward_auto, the backend's linear path: cuBLASLt where the expert's rows and weights keep
//     256-byte alignment, as at real shapes) on the expert's run of rows, SwiGLU over all rows at
//     once. The experts' offsets are copied to the host (E + 1 ints, a synchronisation) to size the
//     GEMMs, as attention copies its cu_seqlens.
//   - combination per token in slot order (a gather through the inverse of `order`, no racing
//     scatter); dweights are warp dot products in double over a fixed lane stride.
#include <vector>

#include "backend_op.cuh"
#include "common.cuh"

namespace medix::cuda {
namespace {

constexpr int kWarpsPerBlock = 8;         // one token (or assignment) per warp, 256 threads a block
constexpr int kSortChunk = 1024;          // assignments per chunk of the counting sort
constexpr int64_t kMaxExperts = 32 * 32;  // the router's per-lane bit mask of picked experts

unsigned int warp_blocks(int64_t rows) { return blocks_for(rows, kWarpsPerBlock); }

__device__ inline int64_t warp_row() { return static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32; }

// probs = softmax(logits) per token; experts/weights = its top K (renormalised when norm_topk).
__global__ void route_topk_kernel(float* probs, int32_t* experts, float* weights, const float* logits, int64_t T,
                                  int64_t E, int64_t K, bool norm_topk) {
  const int64_t t = warp_row();
  const int lane = threadIdx.x % 32;
  if (t >= T) return;
  const float* x = logits + t * E;
  float* p = probs + t * E;
  float mx = -INFINITY;
  for (int64_t e = lane; e < E; e += 32) mx = fmaxf(mx, x[e]);
  mx = warp_max(mx);
  double sum = 0.0;
  for (int64_t e = lane; e < E; e += 32) {
    const float v = expf(x[e] - mx);
    p[e] = v;
    sum += v;
  }
  sum = warp_sum(sum);
  for (int64_t e = lane; e < E; e += 32) p[e] = static_cast<float>(p[e] / sum);  // each lane reads its own writes
  uint32_t taken = 0;  // bit j: this lane's expert lane + 32 j is already picked
  double picked = 0.0;
  for (int64_t k = 0; k < K; ++k) {
    float best_p = 0.0f;
    int32_t best = -1;
    int j = 0;
    for (int64_t e = lane; e < E; e += 32, ++j)
      if (!(taken >> j & 1u) && (best < 0 || p[e] > best_p)) best_p = p[e], best = static_cast<int32_t>(e);
    // Warp argmax under (probability descending, index ascending): a total order, so every lane
    // ends with the same winner whatever the exchange order.
    for (int o = 16; o > 0; o >>= 1) {
      const float other_p = __shfl_xor_sync(0xffffffffu, best_p, o);
      const int32_t other = __shfl_xor_sync(0xffffffffu, best, o);
      if (other >= 0 && (best < 0 || other_p > best_p || (other_p == best_p && other < best)))
        best_p = other_p, best = other;
    }
    if (best % 32 == lane) taken |= 1u << (best / 32);
    if (lane == 0) experts[t * K + k] = best, weights[t * K + k] = best_p;
    picked += best_p;
  }
  if (norm_topk && lane == 0)
    for (int64_t k = 0; k < K; ++k) weights[t * K + k] = static_cast<float>(weights[t * K + k] / picked);
}

// Loads assignments [chunk * kSortChunk, +len) of `experts` into shared memory; returns len.
__device__ inline int load_chunk(int32_t* chunk, const int32_t* experts, int64_t n) {
  const int64_t a0 = static_cast<int64_t>(blockIdx.x) * kSortChunk;
  const int len = static_cast<int>(n - a0 < kSortChunk ? n - a0 : kSortChunk);
  for (int i = threadIdx.x; i < len; i += blockDim.x) chunk[i] = experts[a0 + i];
  __syncthreads();
  return len;
}

// counts[c, e] = picks of expert e in chunk c (one thread per expert scans the chunk).
__global__ void sort_count_kernel(int32_t* counts, const int32_t* experts, int64_t n, int64_t E) {
  __shared__ int32_t chunk[kSortChunk];
  const int len = load_chunk(chunk, experts, n);
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t c = 0;
    for (int i = 0; i < len; ++i) c += chunk[i] == e;
    counts[blockIdx.x * E + e] = c;
  }
}

// One block: offsets[e + 1] = picks of experts 0..e; base[c, e] = offsets[e] + picks of e in chunks < c.
__global__ void sort_scan_kernel(int32_t* offsets, int32_t* base, const int32_t* counts, int64_t chunks, int64_t E) {
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t total = 0;
    for (int64_t c = 0; c < chunks; ++c) total += counts[c * E + e];
    offsets[e + 1] = total;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    offsets[0] = 0;
    for (int64_t e = 0; e < E; ++e) offsets[e + 1] += offsets[e];
  }
  __syncthreads();
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t run = offsets[e];
    for (int64_t c = 0; c < chunks; ++c) base[c * E + e] = run, run += counts[c * E + e];
  }
}

// order[base[c, e] + i] = the i-th assignment of chunk c that picked e, in assignment order.
__global__ void sort_place_kernel(int32_t* order, const int32_t* base, const int32_t* experts, int64_t n, int64_t E) {
  __shared__ int32_t chunk[kSortChunk];
  const int len = load_chunk(chunk, experts, n);
  const int64_t a0 = static_cast<int64_t>(blockIdx.x) * kSortChunk;
  for (int64_t e = threadIdx.x; e < E; e += blockDim.x) {
    int32_t r = base[blockIdx.x * E + e];
    for (int i = 0; i < len; ++i)
      if (chunk[i] == e) order[r++] = static_cast<int32_t>(a0 + i);
  }
}

// dlogits[t] += the softmax backward of dp, dp being nonzero on the picked experts only (moe.cc).
__global__ void route_backward_kernel(float* dlogits, const float* dweights, const float* probs, const int32_t* experts,
                                      const float* weights, int64_t T, int64_t E, int64_t K, bool norm_topk) {
  const int64_t t = warp_row();
  const int lane = threadIdx.x % 32;
  if (t >= T) return;
  const float* p = probs + t * E;
  const float* dw = dweights + t * K;
  const float* w = weights + t * K;
  const int32_t* ex = experts + t * K;
  // K terms in k order, the same in every lane (and as on the CPU).
  double picked = 0.0, dot = 0.0;
  if (norm_topk)
    for (int64_t k = 0; k < K; ++k) picked += p[ex[k]], dot += static_cast<double>(dw[k]) * w[k];
  auto dp_of = [&](int64_t k) { return norm_topk ? (dw[k] - dot) / picked : static_cast<double>(dw[k]); };
  double mean = 0.0;
  for (int64_t k = 0; k < K; ++k) mean += p[ex[k]] * dp_of(k);
  for (int64_t e = lane; e < E; e += 32) {
    double dp = 0.0;
    for (int64_t k = 0; k < K; ++k)
      if (ex[k] == e) dp = dp_of(k);
    dlogits[t * E + e] += static_cast<float>(p[e] * (dp - mean));
  }
}

// dst[r] = src row of assignment order[r]'s token, times weights[order[r]] when weights is given.
__global__ void gather_rows_kernel(float* dst, const float* src, const float* weights, const int32_t* order, int64_t n,
                                   int64_t K, int64_t H) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n * H) return;
  const int64_t r = i / H, h = i % H, a = order[r];
  const float v = src[(a / K) * H + h];
  dst[i] = weights ? v * weights[a] : v;
}

// pos[order[r]] = r: where each assignment sits in `order` (a permutation, so no two writes collide).
__global__ void positions_kernel(int32_t* pos, const int32_t* order, int64_t n) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (r < n) pos[order[r]] = static_cast<int32_t>(r);
}

// out[t, h] = sum over k in order of weights[t, k] * y[pos[t K + k], h].
__global__ void combine_kernel(float* out, const float* y, const float* weights, const int32_t* pos, int64_t T,
                               int64_t K, int64_t H) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * H) return;
  const int64_t t = i / H, h = i % H;
  float o = 0.0f;
  for (int64_t k = 0; k < K; ++k) o += weights[t * K + k] * y[static_cast<int64_t>(pos[t * K + k]) * H + h];
  out[i] = o;
}

// dx[t, h] += dxs[pos[t K + k], h] for k in order (the CPU's order of float additions).
__global__ void scatter_dx_kernel(float* dx, const float* dxs, const int32_t* pos, int64_t T, int64_t K, int64_t H) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= T * H) return;
  const int64_t t = i / H, h = i % H;
  float acc = dx[i];
  for (int64_t k = 0; k < K; ++k) acc += dxs[static_cast<int64_t>(pos[t * K + k]) * H + h];
  dx[i] = acc;
}

// dweights[a] = <dout[a / K], y[pos[a]]> in double: one warp per assignment, lanes over h.
__global__ void dweights_kernel(float* dweights, const float* dout, const float* y, const int32_t* pos, int64_t n,
                                int64_t K, int64_t H) {
  const int64_t a = warp_row();
  const int lane = threadIdx.x % 32;
  if (a >= n) return;
  const float* g = dout + (a / K) * H;
  const float* yr = y + static_cast<int64_t>(pos[a]) * H;
  double d = 0.0;
  for (int64_t h = lane; h < H; h += 32) d += static_cast<double>(g[h]) * yr[h];
  d = warp_sum(d);
  if (lane == 0) dweights[a] = static_cast<float>(d);
}

// dlogits[t] += p (c - <p, c>), c = coef[seq[t]] (d aux / d p); tokens of no sequence (seq -1) skip.
__global__ void aux_backward_kernel(float* dlogits, const float* probs, const double* coef, const int32_t* seq,
                                    int64_t T, int64_t E) {
  const int64_t t = warp_row();
  const int lane = threadIdx.x % 32;
  if (t >= T || seq[t] < 0) return;
  const float* p = probs + t * E;
  const double* c = coef + static_cast<int64_t>(seq[t]) * E;
  double mean = 0.0;
  for (int64_t e = lane; e < E; e += 32) mean += p[e] * c[e];
  mean = warp_sum(mean);
  for (int64_t e = lane; e < E; e += 32) dlogits[t * E + e] += static_cast<float>(p[e] * (c[e] - mean));
}

// The routing ops' shape (tokens, experts, top-k): they read neither H nor I.
void check_route_shape(const MoeShape& s, const char* op) {
  MEDIX_CHECK(s.T >= 0, op, ": T must be >= 0; got ", s.T);
  MEDIX_CHECK(s.E > 0 && s.E <= kMaxExperts, op, ": experts E = ", s.E, " must be in 1..", kMaxExperts);
  MEDIX_CHECK(s.K > 0 && s.K <= s.E, op, ": experts per token K = ", s.K, " must be in 1..E (", s.E, ")");
  MEDIX_CHECK(s.T * s.K <= INT32_MAX, op, ": T*K = ", s.T * s.K, " assignments do not fit int32 indices");
}

void check_shape(const MoeShape& s, const char* op) {
  check_route_shape(s, op);
  MEDIX_CHECK(s.H > 0 && s.I > 0, op, ": H, I must be > 0; got ", s.H, ", ", s.I);
}

// The experts' offsets on the host (to size each expert's GEMMs), checked: they become row ranges of
// device buffers, so offsets that do not partition the T*K assignments would read and write outside them.
std::vector<int32_t> host_offsets(const int32_t* offsets, const MoeShape& s, cudaStream_t stream, const char* op) {
  std::vector<int32_t> off(static_cast<size_t>(s.E + 1));
  check(cudaMemcpyAsync(off.data(), offsets, sizeof(int32_t) * off.size(), cudaMemcpyDeviceToHost, stream), op);
  check(cudaStreamSynchronize(stream), op);
  MEDIX_CHECK(off.front() == 0 && off.back() == s.T * s.K, op, ": offsets must run from 0 to T*K = ", s.T * s.K,
              ", not ", off.front(), " to ", off.back());
  for (size_t e = 0; e + 1 < off.size(); ++e)
    MEDIX_CHECK(off[e] <= off[e + 1], op, ": offsets must not decrease (expert ", e, ": ", off[e], " > ", off[e + 1],
                ")");
  return off;
}

// Calls fn(e, r0, rows) for each expert e that has rows: its run [r0, r0 + rows) of `order`.
template <typename Fn>
void for_each_expert(const std::vector<int32_t>& off, Fn fn) {
  for (size_t e = 0; e + 1 < off.size(); ++e)
    if (off[e + 1] > off[e]) fn(static_cast<int64_t>(e), static_cast<int64_t>(off[e]), int64_t{off[e + 1] - off[e]});
}

void launch_positions(int32_t* pos, const int32_t* order, int64_t n, cudaStream_t stream) {
  positions_kernel<<<blocks_for(n), kThreads, 0, stream>>>(pos, order, n);
  MEDIX_CUDA_LAUNCHED("moe positions");
}

void launch_gather(float* dst, const float* src, const float* weights, const int32_t* order, const MoeShape& s,
                   cudaStream_t stream) {
  const int64_t n = s.T * s.K;
  gather_rows_kernel<<<blocks_for(n * s.H), kThreads, 0, stream>>>(dst, src, weights, order, n, s.K, s.H);
  MEDIX_CUDA_LAUNCHED("moe gather rows");
}

// The experts on f32 weights or on a bf16 compute copy: linear_*_auto overloads on the weights' type.
template <typename Weight>
void experts_forward(float* out, float* gate, float* up, float* y, const float* x, const Weight* gate_up,
                     const Weight* down, const float* weights, const int32_t* order, const int32_t* offsets,
                     const MoeShape& s, cudaStream_t stream) {
  check_shape(s, "moe_experts_forward");
  const int64_t H = s.H, I = s.I, K = s.K, n = s.T * K;
  if (n == 0) return;
  const std::vector<int32_t> off = host_offsets(offsets, s, stream, "moe_experts_forward (offsets to host)");
  Scratch<float> xs(n * H, stream, "moe_experts_forward (gathered rows)");
  Scratch<float> act(n * I, stream, "moe_experts_forward (activations)");
  Scratch<int32_t> pos(n, stream, "moe_experts_forward (positions)");
  launch_gather(xs.get(), x, nullptr, order, s, stream);
  for_each_expert(off, [&](int64_t e, int64_t r0, int64_t rows) {
    const Weight* wg = gate_up + e * 2 * I * H;
    linear_forward_auto(gate + r0 * I, xs.get() + r0 * H, wg, nullptr, rows, H, I, stream);
    linear_forward_auto(up + r0 * I, xs.get() + r0 * H, wg + I * H, nullptr, rows, H, I, stream);
  });
  swiglu_forward(act.get(), gate, up, n * I, stream);
  for_each_expert(off, [&](int64_t e, int64_t r0, int64_t rows) {
    linear_forward_auto(y + r0 * H, act.get() + r0 * I, down + e * H * I, nullptr, rows, I, H, stream);
  });
  launch_positions(pos.get(), order, n, stream);
  combine_kernel<<<blocks_for(s.T * H), kThreads, 0, stream>>>(out, y, weights, pos.get(), s.T, K, H);
  MEDIX_CUDA_LAUNCHED("moe_experts_forward (combine)");
}

template <typename Weight>
void experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout, const float* x,
                      const Weight* gate_up, const Weight* down, const float* weights, const int32_t* order,
                      const int32_t* offsets, const float* gate, const float* up, const float* y, const MoeShape& s,
                      cudaStream_t stream) {
  check_shape(s, "moe_experts_backward");
  const int64_t H = s.H, I = s.I, K = s.K, n = s.T * K;
  if (n == 0) return;
  const std::vector<int32_t> off = host_offsets(offsets, s, stream, "moe_experts_backward (offsets to host)");
  // Per sorted position: the token's input row, dy = w * dout of its token, and the row's dx.
  Scratch<float> xs(n * H, stream, "moe_experts_backward (gathered rows)");
  Scratch<float> dys(n * H, stream, "moe_experts_backward (gathered dout)");
  Scratch<float> dxs(n * H, stream, "moe_experts_backward (row gradients)");
  Scratch<float> act(n * I, stream, "moe_experts_backward (activations)");
  Scratch<float> dact(n * I, stream, "moe_experts_backward (activation gradients)");
  Scratch<float> dg(n * I, stream, "moe_experts_backward (gate gradients)");
  Scratch<float> du(n * I, stream, "moe_experts_backward (up gradients)");
  Scratch<int32_t> pos(n, stream, "moe_experts_backward (positions)");
  // linear_backward and swiglu_backward accumulate: their scratch outputs start at zero.
  check(cudaMemsetAsync(dxs.get(), 0, sizeof(float) * n * H, stream), "moe_experts_backward (zero dxs)");
  for (float* p : {dact.get(), dg.get(), du.get()})
    check(cudaMemsetAsync(p, 0, sizeof(float) * n * I, stream), "moe_experts_backward (zero scratch)");
  launch_gather(xs.get(), x, nullptr, order, s, stream);
  launch_gather(dys.get(), dout, weights, order, s, stream);
  swiglu_forward(act.get(), gate, up, n * I, stream);
  for_each_expert(off, [&](int64_t e, int64_t r0, int64_t rows) {
    linear_backward_auto(dact.get() + r0 * I, ddown + e * H * I, nullptr, dys.get() + r0 * H, act.get() + r0 * I,
                         down + e * H * I, rows, I, H, stream);
  });
  swiglu_backward(dg.get(), du.get(), dact.get(), gate, up, n * I, stream);
  for_each_expert(off, [&](int64_t e, int64_t r0, int64_t rows) {
    const Weight* wg = gate_up + e * 2 * I * H;
    float* dwg = dgate_up + e * 2 * I * H;
    const float* xe = xs.get() + r0 * H;
    linear_backward_auto(dxs.get() + r0 * H, dwg, nullptr, dg.get() + r0 * I, xe, wg, rows, H, I, stream);
    linear_backward_auto(dxs.get() + r0 * H, dwg + I * H, nullptr, du.get() + r0 * I, xe, wg + I * H, rows, H, I,
                         stream);
  });
  launch_positions(pos.get(), order, n, stream);
  dweights_kernel<<<warp_blocks(n), 32 * kWarpsPerBlock, 0, stream>>>(dweights, dout, y, pos.get(), n, K, H);
  MEDIX_CUDA_LAUNCHED("moe_experts_backward (dweights)");
  scatter_dx_kernel<<<blocks_for(s.T * H), kThreads, 0, stream>>>(dx, dxs.get(), pos.get(), s.T, K, H);
  MEDIX_CUDA_LAUNCHED("moe_experts_backward (dx)");
}

}  // namespace

void moe_route_forward(float* probs, int32_t* experts, float* weights, int32_t* order, int32_t* offsets,
                       const float* logits, const MoeShape& s, cudaStream_t stream) {
  check_route_shape(s, "moe_route_forward");
  const int64_t n = s.T * s.K;
  if (n == 0) {
    check(cudaMemsetAsync(offsets, 0, sizeof(int32_t) * (s.E + 1), stream), "moe_route_forward (offsets)");
    return;
  }
  route_topk_kernel<<<warp_blocks(s.T), 32 * kWarpsPerBlock, 0, stream>>>(probs, experts, weights, logits, s.T, s.E,
                                                                          s.K, s.norm_topk);
  MEDIX_CUDA_LAUNCHED("moe_route_forward (softmax, top-k)");
  const int64_t chunks = (n + kSortChunk - 1) / kSortChunk;
  Scratch<int32_t> counts(chunks * s.E, stream, "moe_route_forward (sort counts)");
  Scratch<int32_t> base(chunks * s.E, stream, "moe_route_forward (sort bases)");
  sort_count_kernel<<<static_cast<unsigned int>(chunks), kThreads, 0, stream>>>(counts.get(), experts, n, s.E);
  MEDIX_CUDA_LAUNCHED("moe_route_forward (sort count)");
  sort_scan_kernel<<<1, kThreads, 0, stream>>>(offsets, base.get(), counts.get(), chunks, s.E);
  MEDIX_CUDA_LAUNCHED("moe_route_forward (sort scan)");
  sort_place_kernel<<<static_cast<unsigned int>(chunks), kThreads, 0, stream>>>(order, base.get(), experts, n, s.E);
  MEDIX_CUDA_LAUNCHED("moe_route_forward (sort place)");
}

void moe_route_backward(float* dlogits, const float* dweights, const float* probs, const int32_t* experts,
                        const float* weights, const MoeShape& s, cudaStream_t stream) {
  check_route_shape(s, "moe_route_backward");
  if (s.T == 0) return;
  route_backward_kernel<<<warp_blocks(s.T), 32 * kWarpsPerBlock, 0, stream>>>(dlogits, dweights, probs, experts,
                                                                              weights, s.T, s.E, s.K, s.norm_topk);
  MEDIX_CUDA_LAUNCHED("moe_route_backward");
}

void moe_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const float* gate_up,
                         const float* down, const float* weights, const int32_t* order, const int32_t* offsets,
                         const MoeShape& s, cudaStream_t stream) {
  experts_forward(out, gate, up, y, x, gate_up, down, weights, order, offsets, s, stream);
}

void moe_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const __nv_bfloat16* gate_up,
                         const __nv_bfloat16* down, const float* weights, const int32_t* order, const int32_t* offsets,
                         const MoeShape& s, cudaStream_t stream) {
  experts_forward(out, gate, up, y, x, gate_up, down, weights, order, offsets, s, stream);
}

void moe_experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout, const float* x,
                          const float* gate_up, const float* down, const float* weights, const int32_t* order,
                          const int32_t* offsets, const float* gate, const float* up, const float* y, const MoeShape& s,
                          cudaStream_t stream) {
  experts_backward(dx, dgate_up, ddown, dweights, dout, x, gate_up, down, weights, order, offsets, gate, up, y, s,
                   stream);
}

void moe_experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout, const float* x,
                          const __nv_bfloat16* gate_up, const __nv_bfloat16* down, const float* weights,
                          const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                          const float* y, const MoeShape& s, cudaStream_t stream) {
  experts_backward(dx, dgate_up, ddown, dweights, dout, x, gate_up, down, weights, order, offsets, gate, up, y, s,
                   stream);
}

void moe_aux_backward(float* dlogits, const float* probs, const double* counts, const int32_t* cu, int64_t n_seqs,
                      int64_t layers, float scale, const MoeShape& s, cudaStream_t stream) {
  check_route_shape(s, "moe_aux_backward");
  const int64_t E = s.E;
  // d aux / d p_e per sequence (the CPU's formula, on the host) and each token's sequence.
  std::vector<double> coef(static_cast<size_t>(n_seqs * E), 0.0);
  std::vector<int32_t> seq(static_cast<size_t>(s.T), -1);
  for (int64_t q = 0; q < n_seqs; ++q) {
    MEDIX_CHECK(cu[q] >= 0 && cu[q] <= cu[q + 1] && cu[q + 1] <= s.T, "moe_aux_backward: cu_seqlens[", q, "..", q + 1,
                "] = ", cu[q], "..", cu[q + 1], " is not a range of the ", s.T, " tokens");
    const double tokens = static_cast<double>(cu[q + 1] - cu[q]) * static_cast<double>(layers);
    if (tokens == 0) continue;
    for (int64_t e = 0; e < E; ++e)
      coef[q * E + e] = static_cast<double>(scale) * static_cast<double>(E) * counts[q * E + e] / (tokens * tokens);
    for (int64_t t = cu[q]; t < cu[q + 1]; ++t) seq[t] = static_cast<int32_t>(q);
  }
  if (s.T == 0 || n_seqs == 0) return;
  Scratch<double> d_coef(n_seqs * E, stream, "moe_aux_backward (coefficients)");
  Scratch<int32_t> d_seq(s.T, stream, "moe_aux_backward (sequence of each token)");
  // From pageable memory: the copies have read the host vectors when they return.
  check(cudaMemcpyAsync(d_coef.get(), coef.data(), sizeof(double) * coef.size(), cudaMemcpyHostToDevice, stream),
        "moe_aux_backward (coefficients to device)");
  check(cudaMemcpyAsync(d_seq.get(), seq.data(), sizeof(int32_t) * seq.size(), cudaMemcpyHostToDevice, stream),
        "moe_aux_backward (sequences to device)");
  aux_backward_kernel<<<warp_blocks(s.T), 32 * kWarpsPerBlock, 0, stream>>>(dlogits, probs, d_coef.get(), d_seq.get(),
                                                                            s.T, E);
  MEDIX_CUDA_LAUNCHED("moe_aux_backward");
}

// The CUDA backend's ops (core/backend_op.h).
MEDIX_CUDA_OP(MoeRouteForward, cuda::moe_route_forward);
MEDIX_CUDA_OP(MoeRouteBackward, cuda::moe_route_backward);
MEDIX_CUDA_OP(MoeExpertsForward, cuda::moe_experts_forward);
MEDIX_CUDA_OP(MoeExpertsBackward, cuda::moe_experts_backward);
MEDIX_CUDA_OP(MoeAuxBackward, cuda::moe_aux_backward);
MEDIX_CUDA_OP(MoeExpertsForwardBf16, cuda::moe_experts_forward);
MEDIX_CUDA_OP(MoeExpertsBackwardBf16, cuda::moe_experts_backward);

}  // namespace medix::cuda
