// Token sampling (ops/sampling.h) on the GPU: cpu::sample's tokens, seeded draws included, and its
// log-probs to a float ulp or so. One block of 512 threads per row; nothing of size vocab is stored:
// every pass reads the row's logits again and recomputes an id's value as the CPU computes it.
//
// Values, bit for bit. w = (penalised logit - shift) / temperature with IEEE division and no
// contraction (__f*_rn), the penalty read from a bitmap of the row's history (shared memory), the
// shift the row's largest penalised logit. e = exp(w) is simd_exp.h's polynomial with the fused
// multiply-adds GCC forms when it builds the CPU code for x86-64-v3 (binding.gyp and the conformance
// build; -ffp-contract=fast is GCC's default for C++): the CPU's e for every float input (checked on
// the host for all 2.2e9 floats in [-100, 1]). log(min_p) and the draw's u come from the host, so from
// the CPU's own libm and rng.h.
//
// Filters. Each keeps a prefix of the order "larger w first, lower id first among equal w", found as
// the CPU finds it: a radix selection over the keys of w (digits of 11, 11 and 10 bits), each level a
// histogram in shared memory of the ids' count and mass per digit, walked from the largest digit by
// warp 0 (lanes take 64 or 32 digits, their totals scanned across lanes) to the digit where the prefix
// reaches its target. Then the number of ids with exactly the boundary value that are in ("ties", the
// lowest ids first), and the last of those ids, found by a count per warp over id ranges. top-k
// counts ids, exactly. min-p needs no sum: a key floor, as on the CPU. top-p weighs ids by e: masses
// are held in fixed point (a value's multiples of 2^-80, in two 64-bit integers for the parts above
// and below 2^-40), so sums are exact integers in any order: integer atomics fill the histograms and
// still give the same bits on every run.
//
// top-p and the CPU's roundings. The CPU sums masses in double term by term (its histograms and the
// top-k candidates' mass in id order, the row's mass by groups of 8, its running sum over digits, its
// ties one by one); a sum of terms >= 0 in which no term goes through more than n roundings is within
// gamma_n = n 2^-53 / (1 - n 2^-53) of the exact one (relative): n <= 2V + 5121 for the prefix masses
// the CPU compares, V + 2 for its target. So when the exact prefix masses just below and at the exact
// boundary both lie further than (3V + 8300) 2^-53 (and a little) from top_p * mass, relative, the
// CPU's comparisons come out as the exact ones and so does its cut. Otherwise (ties of exactly
// representable masses, or tied maxima at a low temperature over a tail the CPU's sums round away,
// where its rounding decides: 0.5 * 2 = 1 against 0.5 * (2 + 2^-51)) the row replays the CPU's top-p
// step with its roundings (replay_top_p): one lane adds what the CPU adds, in its order. Milliseconds
// for a Qwen3 row, in rows whose exact masses lie within ~1e-10 of a boundary.
//
// The draw: the kept ids' e in sums of 64 ids, each added as the CPU's 8 lanes add it (8 threads
// are the lanes, then lane 0's sum of the 8 in order, then the ids past the last full 8), the running
// sums of those in double by one thread in block order, target = u * their total, the block by binary
// search of the running sums, the walk inside it. Every rounding of the CPU's draw, in its order.
//
// So the token is the CPU's for every finite input (both clamp a penalised logit to the float range,
// where a penalty below 1 could carry one near FLT_MAX past it). The one assumption
// is the CPU's e: those of a build with FMA (x86-64-v3, as binding.gyp and the conformance program
// build it); a build without (plain x86-64) rounds 0.06% of exponentials differently, and its draws
// and top-p cuts could then differ where they fall within that rounding of a boundary. The log-prob's
// log-sum-exp is a sum too (exact here, term by term on the CPU): a few 1e-16 apart in double before
// the cast to float, so the log-prob is the CPU's or a float ulp from it.
#include <algorithm>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <string>
#include <vector>

#include "backend_op.cuh"
#include "common.cuh"
#include "core/rng.h"

namespace medix::cuda {
namespace {

using u64 = unsigned long long;
using u128 = unsigned __int128;

constexpr int kSampleThreads = 512;
constexpr int kSampleWarps = kSampleThreads / 32;
constexpr int64_t kDrawBlock = 64;  // ids per block of the draw's running sums, as cpu::sample's
constexpr int kMaxDigits = 2048;
// So that fixed-point sums (below) stay under 2^64: 2^21 values of e <= 1, or 2^18 group sums <= 8, times 2^40.
constexpr int64_t kMaxVocab = int64_t{1} << 21;

// Per row, from the host: the parameters as the kernel uses them.
struct RowArgs {
  int64_t h0, h1;  // the row's history: history[h0 .. h1)
  float temperature, penalty, top_p, log_min_p;
  float u;        // the draw's uniform, uniform01(sampler_stream_seed(seed, stream), counter)
  int32_t top_k;  // in (0, vocab), or 0: off
  bool greedy, penalised, min_p;
};

// simd_exp.h's exp_lanes on one value with the roundings of the x86-64-v3 build (see the file comment):
// x * log2(e) + 0.5, x - n * ln2_hi, + n * ln2_lo and each Horner step are fused, r * r is not.
__device__ inline float exp_cpu(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float t = __fmaf_rn(x, 1.44269504088896341f, 0.5f);
  float n = static_cast<float>(__float2int_rz(t));
  n = n > t ? n - 1.0f : n;
  const float r = __fmaf_rn(n, 2.12194440e-4f, __fmaf_rn(-n, 0.693359375f, x));
  float p = 1.9875691500e-4f;
  p = __fmaf_rn(p, r, 1.3981999507e-3f);
  p = __fmaf_rn(p, r, 8.3334519073e-3f);
  p = __fmaf_rn(p, r, 4.1665795894e-2f);
  p = __fmaf_rn(p, r, 1.6666665459e-1f);
  p = __fmaf_rn(p, r, 5.0000001201e-1f);
  p = __fadd_rn(__fmaf_rn(p, __fmul_rn(r, r), r), 1.0f);
  return __fmul_rn(p, __int_as_float((static_cast<int>(n) + 127) << 23));
}

// The CPU's order_key: unsigned keys in the order of the floats, -0 made +0 first.
__device__ inline uint32_t order_key(float x) {
  uint32_t u = __float_as_uint(x);
  if (u == 0x80000000u) u = 0;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ inline float key_value(uint32_t k) { return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k); }

// A kept prefix of the order: ids with a key above `key`, and those with key == key up to id `last`.
struct Cut {
  uint32_t key;
  int32_t last;
};
constexpr Cut kKeepAll{0, INT_MAX};
__device__ inline bool keeps(Cut c, uint32_t k, int64_t id) { return k > c.key || (k == c.key && id <= c.last); }

// A float in [0, 8] in units of 2^-80, as its multiples of 2^-40 and the rest (both exact in double:
// x * 2^40 has x's 24 significant bits, its fraction likewise); bits below 2^-80 are dropped.
struct Fixed {
  u64 hi, lo;
};
__device__ inline Fixed to_fixed(float x) {
  const double a = static_cast<double>(x) * 0x1p40, h = floor(a);
  return {static_cast<u64>(h), static_cast<u64>((a - h) * 0x1p40)};
}
__device__ inline u128 fixed_value(u64 hi, u64 lo) { return (static_cast<u128>(hi) << 40) + lo; }
// The double nearest to v * 2^-80 (one rounding: the bits below the 64 kept fold into a sticky bit).
__device__ inline double fixed_to_double(u128 v) {
  const u64 top = static_cast<u64>(v >> 64);
  if (top == 0) return static_cast<double>(static_cast<u64>(v)) * 0x1p-80;
  const int s = 64 - __clzll(static_cast<long long>(top));
  const u64 kept = static_cast<u64>(v >> s) | static_cast<u64>((v & ((static_cast<u128>(1) << s) - 1)) != 0);
  return ldexp(static_cast<double>(kept), s - 80);
}

__device__ inline u64 block_max_u64(u64 x, u64* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, o));
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  x = lane < kSampleWarps ? shared[lane] : 0;
  for (int o = 16; o > 0; o >>= 1) x = max(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// A u128 across a warp: lane `src`'s value, or the lanes' inclusive scan (lane 0 first).
__device__ inline u128 shfl_u128(u128 v, int src) {
  const u64 hi = __shfl_sync(0xffffffffu, static_cast<u64>(v >> 64), src);
  return (static_cast<u128>(hi) << 64) | __shfl_sync(0xffffffffu, static_cast<u64>(v), src);
}
__device__ inline u128 warp_scan_u128(u128 v, int lane) {
  for (int o = 1; o < 32; o <<= 1) {
    const u64 hi = __shfl_up_sync(0xffffffffu, static_cast<u64>(v >> 64), o);
    const u64 lo = __shfl_up_sync(0xffffffffu, static_cast<u64>(v), o);
    if (lane >= o) v += (static_cast<u128>(hi) << 64) | lo;
  }
  return v;
}

// One row's values. The history bitmap marks the ids whose logit the repetition penalty changes
// (once each, however often the id recurs, as the CPU's deduplicated history).
struct Row {
  const float* x;
  const uint32_t* in_history;
  float penalty, shift, temperature;
  bool penalised;
  __device__ float penalised_logit(int64_t i) const {
    const float l = x[i];
    if (!penalised || !((in_history[i >> 5] >> (i & 31)) & 1u)) return l;
    // Clamped to the float range as cpu::sample's penalise does (a penalty below 1 could overflow).
    return fminf(fmaxf(l > 0.0f ? __fdiv_rn(l, penalty) : __fmul_rn(l, penalty), -FLT_MAX), FLT_MAX);
  }
  __device__ float w(int64_t i) const { return __fdiv_rn(__fsub_rn(penalised_logit(i), shift), temperature); }
};

// Shared between a selection's levels: the boundary so far and the count and mass above it.
struct SelectState {
  u128 mass_above;
  u64 count_above, count_at;  // count_at: ids (candidates) with the boundary key, after the last level
  u64 ties;                   // how many of those are kept
  uint32_t prefix, mask;
  double target;
  int32_t tie_id;
  bool ambiguous;  // top-p: the CPU's roundings could move the cut (see the file comment)
  uint32_t warp_count[kSampleWarps];
  float stage_e[32];  // replay_top_p: 32 ids' values, for lane 0 to add in order
  int32_t stage_d[32];
  Cut replayed;  // replay_top_p's cut (fields of its own: other warps may still read tie_id)
};

struct Hist {
  u64 *hi, *lo;
  uint32_t* count;
};

// Sum over ids of exp(f(id)) as the CPU forms it: float sums of 8 consecutive ids (one vector's hsum,
// lanes in order), then the total of those, here exact.
template <class F>
__device__ u128 group_exp_sum(int64_t V, F f, u64* shared) {
  u64 hi = 0, lo = 0;
  for (int64_t g = threadIdx.x; g * 8 < V; g += blockDim.x) {
    float s = 0.0f;
    for (int64_t i = g * 8; i < min(V, g * 8 + 8); ++i) s = __fadd_rn(s, exp_cpu(f(i)));
    const Fixed q = to_fixed(s);
    hi += q.hi;
    lo += q.lo;
  }
  hi = block_sum(hi, shared);
  lo = block_sum(lo, shared);
  return fixed_value(hi, lo);
}

// The id of the t-th (from 1) id with key `key`, in ascending order: each warp counts a range of ids,
// the warp whose range holds the t-th walks it again.
__device__ int32_t tie_id(const Row& row, int64_t V, uint32_t key, u64 t, SelectState& st) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t span = (V + 32 * kSampleWarps - 1) / (32 * kSampleWarps) * 32;
  const int64_t begin = warp * span, end = min(V, begin + span);
  u64 n = 0;
  for (int64_t j = begin; j < end; j += 32)
    n += __popc(__ballot_sync(0xffffffffu, j + lane < end && order_key(row.w(j + lane)) == key));
  if (lane == 0) st.warp_count[warp] = static_cast<uint32_t>(n);
  __syncthreads();
  u64 before = 0;
  for (int k = 0; k < warp; ++k) before += st.warp_count[k];
  if (before < t && t <= before + n) {
    for (int64_t j = begin; j < end; j += 32) {
      uint32_t hits = __ballot_sync(0xffffffffu, j + lane < end && order_key(row.w(j + lane)) == key);
      const u64 here = __popc(hits);
      if (before + here >= t) {
        for (u64 k = before + 1; k < t; ++k) hits &= hits - 1;  // drop the hits before the t-th
        if (lane == 0) st.tie_id = static_cast<int32_t>(j + __ffs(hits) - 1);
        break;
      }
      before += here;
    }
  }
  __syncthreads();
  return st.tie_id;
}

// The shortest prefix (in the order, among the ids `within` keeps) holding `need` ids (weighted =
// false) or a mass of e reaching `target` (weighted; from_hist: target = top_p * the candidates' mass,
// which the first level's histogram holds); all of them if the total falls short. cpu::select_prefix,
// with exact counts and masses. Every thread calls it and gets the cut.
__device__ Cut select_cut(const Row& row, int64_t V, Cut within, bool weighted, u64 need, double target, bool from_hist,
                          float top_p, const Hist& h, SelectState& st) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (threadIdx.x == 0) {
    st.prefix = st.mask = 0;
    st.count_above = 0;
    st.mass_above = 0;
    st.target = target;
  }
  for (int level = 0; level < 3; ++level) {
    const int shift = level == 0 ? 21 : level == 1 ? 10 : 0, digits = level < 2 ? 2048 : 1024;
    for (int d = threadIdx.x; d < digits; d += blockDim.x) {
      h.hi[d] = h.lo[d] = 0;
      h.count[d] = 0;
    }
    __syncthreads();
    const uint32_t prefix = st.prefix, mask = st.mask;
    for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
      const float w = row.w(i);
      const uint32_t k = order_key(w);
      if ((k & mask) != prefix || !keeps(within, k, i)) continue;
      const uint32_t d = (k >> shift) & (digits - 1);
      atomicAdd(&h.count[d], 1u);
      if (weighted) {
        const Fixed f = to_fixed(exp_cpu(w));
        atomicAdd(&h.hi[d], f.hi);
        atomicAdd(&h.lo[d], f.lo);
      }
    }
    __syncthreads();
    if (warp == 0) {
      // Lane l holds digits top, top - 1, ... (descending, lane 0 the largest).
      const int per = digits / 32, top = digits - 1 - lane * per;
      u128 count = 0, mass = 0;
      uint32_t lowest = UINT_MAX;  // the smallest digit holding an id: the boundary if the target is never met
      for (int j = 0; j < per; ++j) {
        const int d = top - j;
        count += h.count[d];
        if (weighted) mass += fixed_value(h.hi[d], h.lo[d]);
        if (h.count[d] != 0) lowest = d;
      }
      lowest = __reduce_min_sync(0xffffffffu, lowest);
      const u128 count_incl = warp_scan_u128(count, lane), mass_incl = warp_scan_u128(mass, lane);
      if (level == 0 && from_hist) target = static_cast<double>(top_p) * fixed_to_double(shfl_u128(mass_incl, 31));
      if (level > 0 || !from_hist) target = st.target;
      u128 run_count = st.count_above + count_incl - count, run_mass = st.mass_above + mass_incl - mass;
      int hit = -1;
      for (int j = 0; j < per; ++j) {
        const int d = top - j;
        const u128 m = weighted ? fixed_value(h.hi[d], h.lo[d]) : 0;
        const bool reached = weighted ? fixed_to_double(run_mass + m) >= target : run_count + h.count[d] >= need;
        if (reached || d == static_cast<int>(lowest)) {
          hit = d;
          break;
        }
        run_count += h.count[d];
        run_mass += m;
      }
      const int src = __ffs(__ballot_sync(0xffffffffu, hit >= 0)) - 1;
      const int d = __shfl_sync(0xffffffffu, hit, src);
      run_count = shfl_u128(run_count, src);
      run_mass = shfl_u128(run_mass, src);
      if (lane == 0) {
        st.prefix |= static_cast<uint32_t>(d) << shift;
        st.mask |= static_cast<uint32_t>(digits - 1) << shift;
        st.count_above = static_cast<u64>(run_count);
        st.mass_above = run_mass;
        st.count_at = h.count[d];
        st.target = target;
      }
    }
    __syncthreads();
  }
  // The ties: all ids with the boundary key weigh the same, so the count that reaches the target is
  // the smallest t with above + t * e >= target (binary search), or all of them.
  if (threadIdx.x == 0 && weighted) {
    const Fixed f = to_fixed(exp_cpu(key_value(st.prefix)));
    const u128 e = fixed_value(f.hi, f.lo);
    u64 lo = 1, hi = st.count_at;
    while (lo < hi) {
      const u64 mid = lo + (hi - lo) / 2;
      if (fixed_to_double(st.mass_above + e * mid) >= st.target)
        hi = mid;
      else
        lo = mid + 1;
    }
    st.ties = lo;
    // The exact masses of the prefix without and with the last tie kept, against the target, each
    // with room for the CPU's rounding (and for this side's: 2^-80 per term, targets rounded twice).
    const double t = st.target, rel = (3.0 * static_cast<double>(V) + 8300.0) * 0x1.03p-53 + 0x1p-57;
    const double below = fixed_to_double(st.mass_above + e * (lo - 1)), at = fixed_to_double(st.mass_above + e * lo);
    const bool clear_below = below == 0.0 || below * (1.0 + rel) < t * (1.0 - rel);
    const bool clear_at = at >= t ? at * (1.0 - rel) > t * (1.0 + rel) : t * (1.0 - rel) > at * (1.0 + rel);
    st.ambiguous = !(clear_below && clear_at);
  }
  __syncthreads();
  const u64 ties = weighted ? st.ties : need - st.count_above, at = st.count_at;
  const uint32_t key = st.prefix;
  __syncthreads();  // every thread has read st before anything rewrites it
  return Cut{key, ties < at ? tie_id(row, V, key, ties, st) : INT_MAX};
}

// cpu::sample's top-p step with its own roundings, for a row the test in select_cut flags: warp 0
// computes 32 ids' values at a time and its lane 0 adds them in id order, in double, as the CPU does:
// the mass, the histogram of each level (ids out of the level's prefix skipped, a zero added where the
// CPU adds nothing changes no double), the running sum over digits, the ties one by one. The cut is
// the CPU's: its boundary key and its last tie. Every thread calls it.
__device__ Cut replay_top_p(const Row& row, int64_t V, Cut cand, bool top_k, float top_p, double* hist,
                            SelectState& st) {
  const int lane = threadIdx.x % 32;
  if (threadIdx.x < 32) {
    // The mass: the candidates' e in id order (top-k), else the float sums of 8 ids in order.
    double mass = 0.0;
    for (int64_t j0 = 0; j0 < (top_k ? V : (V + 7) / 8); j0 += 32) {
      const int64_t j = j0 + lane;
      float x = 0.0f;
      if (top_k && j < V) {
        const float w = row.w(j);
        if (keeps(cand, order_key(w), j)) x = exp_cpu(w);
      }
      if (!top_k)
        for (int64_t i = j * 8; i < min(V, j * 8 + 8); ++i) x = __fadd_rn(x, exp_cpu(row.w(i)));
      st.stage_e[lane] = x;
      __syncwarp();
      if (lane == 0)
        for (int k = 0; k < 32; ++k) mass += static_cast<double>(st.stage_e[k]);
      __syncwarp();
    }
    const double target = __shfl_sync(0xffffffffu, static_cast<double>(top_p) * mass, 0);
    uint32_t prefix = 0, mask = 0;
    double above = 0.0;  // lane 0's
    for (int level = 0; level < 3; ++level) {
      const int shift = level == 0 ? 21 : level == 1 ? 10 : 0, digits = level < 2 ? 2048 : 1024;
      for (int d = lane; d < digits; d += 32) hist[d] = 0.0;
      __syncwarp();
      int held = -1;          // lane 0 holds hist[held] in a register while ids of that digit follow
      double held_sum = 0.0;  // (the same additions in the same order, without a load and store each)
      for (int64_t j0 = 0; j0 < V; j0 += 32) {
        const int64_t j = j0 + lane;
        int32_t digit = -1;
        float e = 0.0f;
        if (j < V) {
          const float w = row.w(j);
          const uint32_t k = order_key(w);
          if ((k & mask) == prefix && keeps(cand, k, j)) {
            digit = static_cast<int32_t>((k >> shift) & (digits - 1));
            e = exp_cpu(w);
          }
        }
        if (__ballot_sync(0xffffffffu, digit >= 0) == 0) continue;
        st.stage_d[lane] = digit;
        st.stage_e[lane] = e;
        __syncwarp();
        if (lane == 0)
          for (int k = 0; k < 32; ++k) {
            const int d = st.stage_d[k];
            if (d < 0) continue;
            if (d != held) {
              if (held >= 0) hist[held] = held_sum;
              held = d;
              held_sum = hist[d];
            }
            held_sum += static_cast<double>(st.stage_e[k]);
          }
        __syncwarp();
      }
      if (lane == 0) {  // cpu::select_prefix's walk over the digits
        if (held >= 0) hist[held] = held_sum;
        int lowest = 0;
        while (lowest < digits - 1 && hist[lowest] == 0.0) ++lowest;
        int d = digits - 1;
        for (; d > lowest; --d) {
          if (above + hist[d] >= target) break;
          above += hist[d];
        }
        prefix |= static_cast<uint32_t>(d) << shift;
        mask |= static_cast<uint32_t>(digits - 1) << shift;
      }
      prefix = __shfl_sync(0xffffffffu, prefix, 0);
      mask = __shfl_sync(0xffffffffu, mask, 0);
      __syncwarp();  // lane 0 has read the histogram before the next level clears it
    }
    // The ties in id order while the running sum is short of the target; the last one added.
    int32_t last = -1;
    for (int64_t j0 = 0; j0 < V; j0 += 32) {
      const int64_t j = j0 + lane;
      bool tie = false;
      float e = 0.0f;
      if (j < V) {
        const float w = row.w(j);
        const uint32_t k = order_key(w);
        tie = k == prefix && keeps(cand, k, j);
        if (tie) e = exp_cpu(w);
      }
      const uint32_t ties = __ballot_sync(0xffffffffu, tie);
      if (ties == 0) continue;
      st.stage_e[lane] = e;
      __syncwarp();
      if (lane == 0)
        for (int k = 0; k < 32 && above < target; ++k)
          if ((ties >> k) & 1u) {
            above += static_cast<double>(st.stage_e[k]);
            last = static_cast<int32_t>(j0 + k);
          }
      if (__shfl_sync(0xffffffffu, static_cast<int>(above >= target), 0)) break;
      __syncwarp();
    }
    if (lane == 0) st.replayed = Cut{prefix, last};
  }
  __syncthreads();
  return st.replayed;
}

__global__ void __launch_bounds__(kSampleThreads, 1)
    sample_kernel(int32_t* tokens, float* logprobs, int64_t* bad, const float* logits, const int32_t* history,
                  const RowArgs* args, int64_t V) {
  extern __shared__ __align__(16) unsigned char smem[];
  __shared__ u64 reduce[32];
  __shared__ SelectState st;
  const int64_t r = blockIdx.x;
  const RowArgs a = args[r];
  const int64_t n_blocks = (V + kDrawBlock - 1) / kDrawBlock;
  // Shared memory: the histogram, or (after the filters) the draw's block sums; then the bitmap.
  const Hist h{reinterpret_cast<u64*>(smem), reinterpret_cast<u64*>(smem) + kMaxDigits,
               reinterpret_cast<uint32_t*>(smem + 16 * kMaxDigits)};
  double* running = reinterpret_cast<double*>(smem);
  float* block_sums = reinterpret_cast<float*>(running + n_blocks + 1);
  const int64_t region = max(static_cast<int64_t>(20 * kMaxDigits), 12 * n_blocks + 8);
  uint32_t* in_history = reinterpret_cast<uint32_t*>(smem + (region + 7) / 8 * 8);

  Row row{logits + r * V, in_history, a.penalty, 0.0f, a.temperature, a.penalised};
  if (a.penalised) {
    for (int64_t j = threadIdx.x; j < (V + 31) / 32; j += blockDim.x) in_history[j] = 0;
    __syncthreads();
    // Bits set by several threads: OR is idempotent, so the bitmap is the same whatever the order.
    // The contract says ids are in [0, vocab); a stray one is skipped rather than written out of bounds.
    for (int64_t j = a.h0 + threadIdx.x; j < a.h1; j += blockDim.x) {
      const int32_t id = history[j];
      if (id >= 0 && id < V) atomicOr(&in_history[id >> 5], 1u << (id & 31));
    }
    __syncthreads();
  }

  // The first non-finite logit (kept as V - id, so the largest is the first), the raw maximum and the
  // penalised maximum with the lowest id among equals (key above, ~id below).
  u64 first_bad = 0, raw_max = 0, best = 0;
  for (int64_t i = threadIdx.x; i < V; i += blockDim.x) {
    const float l = row.x[i];
    if (!isfinite(l)) {
      first_bad = max(first_bad, static_cast<u64>(V - i));
      continue;
    }
    raw_max = max(raw_max, static_cast<u64>(order_key(l)));
    best = max(best, static_cast<u64>(order_key(row.penalised_logit(i))) << 32 | (0xffffffffu - static_cast<u64>(i)));
  }
  first_bad = block_max_u64(first_bad, reduce);
  raw_max = block_max_u64(raw_max, reduce);
  best = block_max_u64(best, reduce);
  if (first_bad != 0) {  // refused: the host throws, naming row and id
    if (threadIdx.x == 0) {
      bad[r] = V - static_cast<int64_t>(first_bad);
      tokens[r] = 0;
      logprobs[r] = 0.0f;
    }
    return;
  }
  const float x_max = key_value(static_cast<uint32_t>(raw_max));
  // The log-sum-exp of the raw logits at a temperature, as the CPU's row_lse: exp((x - max) / t).
  auto raw_lse = [&](float t) {
    return log(fixed_to_double(group_exp_sum(
        V, [&](int64_t i) { return __fdiv_rn(__fsub_rn(row.x[i], x_max), t); }, reduce)));
  };
  if (a.greedy) {  // the largest penalised logit, lowest id on ties; the log-prob at temperature 1
    const double log_sum = raw_lse(1.0f);
    if (threadIdx.x == 0) {
      const int32_t token = static_cast<int32_t>(0xffffffffu - (best & 0xffffffffu));
      tokens[r] = token;
      logprobs[r] = static_cast<float>(static_cast<double>(row.x[token]) - x_max - log_sum);
      bad[r] = -1;
    }
    return;
  }
  // Shifted by the largest penalised logit (cpu::sample's shift), so w <= 0 and e <= 1.
  row.shift = key_value(static_cast<uint32_t>(best >> 32));
  const bool top_k = a.top_k > 0, top_p = a.top_p < 1.0f;
  // The row's mass of e: the top-p target without top-k, and the log-sum-exp without a penalty.
  u128 total = 0;
  if (!a.penalised || (top_p && !top_k))
    total = group_exp_sum(
        V, [&](int64_t i) { return row.w(i); }, reduce);
  const float lse_max = a.penalised ? x_max : row.shift;
  const double log_sum = a.penalised ? raw_lse(a.temperature) : log(fixed_to_double(total));

  Cut cand = kKeepAll, bound = kKeepAll;
  if (top_k) cand = select_cut(row, V, kKeepAll, false, static_cast<u64>(a.top_k), 0.0, false, 1.0f, h, st);
  if (top_p) {
    bound =
        select_cut(row, V, cand, true, 0, static_cast<double>(a.top_p) * fixed_to_double(total), top_k, a.top_p, h, st);
    if (st.ambiguous) bound = replay_top_p(row, V, cand, top_k, a.top_p, reinterpret_cast<double*>(h.hi), st);
  }
  if (a.min_p) {  // p_i >= min_p * p_max  <=>  w_i >= 0 + log(min_p)
    const uint32_t floor_key = order_key(__fadd_rn(0.0f, a.log_min_p));
    if (floor_key > bound.key) bound = Cut{floor_key, INT_MAX};
  }
  auto kept_e = [&](int64_t j) {
    const float w = row.w(j);
    const uint32_t k = order_key(w);
    return keeps(cand, k, j) && keeps(bound, k, j) ? exp_cpu(w) : 0.0f;
  };

  // Block sums: 8 threads per block of 64 ids are the CPU's 8 lanes (lane s adds ids s, s + 8, ...
  // of each full 8), lane 0 adds the 8 lane sums in order and then the ids past the last full 8.
  __syncthreads();  // the histogram's memory becomes the block sums
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, sub = lane % 8;
  for (int64_t b0 = warp * 4; b0 < n_blocks; b0 += 4 * kSampleWarps) {
    const int64_t b = b0 + lane / 8, j0 = b * kDrawBlock, j1 = min(V, j0 + kDrawBlock);
    const int64_t full = b < n_blocks ? (j1 - j0) / 8 : 0;
    float acc = 0.0f;
    for (int64_t m = 0; m < full; ++m) acc = __fadd_rn(acc, kept_e(j0 + 8 * m + sub));
    float s = 0.0f;
    for (int k = 0; k < 8; ++k) s = __fadd_rn(s, __shfl_sync(0xffffffffu, acc, (lane & ~7) + k));
    if (sub == 0 && b < n_blocks) {
      for (int64_t j = j0 + 8 * full; j < j1; ++j) s = __fadd_rn(s, kept_e(j));
      block_sums[b] = s;
    }
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  // cpu::draw: running sums in double, block order; the first block whose running sum reaches
  // u * mass (the last if none does), then the first kept id of it whose running sum reaches it.
  double cum = 0.0;
  running[0] = 0.0;
  for (int64_t b = 0; b < n_blocks; ++b) running[b + 1] = cum += static_cast<double>(block_sums[b]);
  const double target = static_cast<double>(a.u) * cum;
  int64_t lo = 0, hi = n_blocks - 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo) / 2;
    if (running[mid + 1] >= target)
      hi = mid;
    else
      lo = mid + 1;
  }
  cum = running[lo];
  int32_t token = 0;
  for (int64_t j = lo * kDrawBlock; j < min(V, (lo + 1) * kDrawBlock); ++j) {
    const float e = kept_e(j);
    if (e == 0.0f) continue;  // not kept (a kept e is never 0: exp_cpu's input is clamped at -87)
    token = static_cast<int32_t>(j);
    cum += static_cast<double>(e);
    if (target <= cum) break;
  }
  tokens[r] = token;
  logprobs[r] = static_cast<float>((static_cast<double>(row.x[token]) - lse_max) / a.temperature - log_sum);
  bad[r] = -1;
}

}  // namespace

void sample(int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b, cudaStream_t stream) {
  for (int64_t r = 0; r < b.rows; ++r) check_sampler_params(b.params[r]);
  if (b.rows == 0) return;
  const int64_t V = b.vocab;
  MEDIX_CHECK(V >= 1 && V <= kMaxVocab, "sample: vocab must be in [1, ", kMaxVocab, "], got ", V);
  std::vector<RowArgs> args(static_cast<size_t>(b.rows));
  for (int64_t r = 0; r < b.rows; ++r) {
    const SamplerParams& p = b.params[r];
    RowArgs& a = args[r];
    a.h0 = b.history_offsets[r];
    a.h1 = b.history_offsets[r + 1];
    MEDIX_CHECK(a.h0 >= 0 && a.h0 <= a.h1, "sample: history_offsets[", r, "..", r + 1, "] = ", a.h0, "..", a.h1,
                " is not a range");
    a.temperature = p.temperature;
    a.penalty = p.repetition_penalty;
    a.top_p = p.top_p;
    a.top_k = p.top_k > 0 && p.top_k < V ? p.top_k : 0;
    a.min_p = p.min_p > 0.0f;
    a.log_min_p = a.min_p ? std::log(p.min_p) : 0.0f;  // the host's logf, the one cpu::sample calls
    a.u = uniform01(sampler_stream_seed(p.seed, p.stream), p.counter);
    a.greedy = is_greedy(p);
    a.penalised = p.repetition_penalty != 1.0f && a.h1 > a.h0;
  }
  // Dynamic shared memory: max(histogram, draw's running sums and block sums), then the history bitmap.
  const int64_t n_blocks = (V + kDrawBlock - 1) / kDrawBlock;
  const int64_t region = std::max(static_cast<int64_t>(20 * kMaxDigits), 12 * n_blocks + 8);
  const size_t bytes = static_cast<size_t>((region + 7) / 8 * 8 + (V + 31) / 32 * 4);
  int device = 0, optin = 0;
  cudaFuncAttributes attr{};
  check(cudaGetDevice(&device), "sample (device)");
  check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), "sample (shared memory)");
  check(cudaFuncGetAttributes(&attr, sample_kernel), "sample (kernel attributes)");
  MEDIX_CHECK(bytes + attr.sharedSizeBytes <= static_cast<size_t>(optin), "sample: a vocabulary of ", V, " needs ",
              bytes + attr.sharedSizeBytes, " bytes of shared memory per block, this GPU allows ", optin);
  check(cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(bytes)),
        "sample (shared memory)");
  Scratch<RowArgs> d_args(b.rows, stream, "sample (parameters)");
  Scratch<int64_t> d_bad(b.rows, stream, "sample (non-finite flags)");
  // From pageable memory: the copy has read the host vector when it returns.
  check(cudaMemcpyAsync(d_args.get(), args.data(), sizeof(RowArgs) * args.size(), cudaMemcpyHostToDevice, stream),
        "sample (parameters to device)");
  sample_kernel<<<static_cast<unsigned int>(b.rows), kSampleThreads, bytes, stream>>>(
      tokens, logprobs, d_bad.get(), logits, b.history, d_args.get(), V);
  MEDIX_CUDA_LAUNCHED("sample");
  // A non-finite logit is refused as on the CPU, after every row ran: one flag per row comes back.
  std::vector<int64_t> bad(static_cast<size_t>(b.rows));
  check(cudaMemcpyAsync(bad.data(), d_bad.get(), sizeof(int64_t) * bad.size(), cudaMemcpyDeviceToHost, stream),
        "sample (flags to host)");
  check(cudaStreamSynchronize(stream), "sample (sync)");
  for (int64_t r = 0; r < b.rows; ++r) {
    if (bad[r] < 0) continue;
    float value = 0.0f;
    check(cudaMemcpy(&value, logits + r * V + bad[r], sizeof value, cudaMemcpyDeviceToHost), "sample (bad logit)");
    fail("sampling: row ", r, " logit ", bad[r], " is ", value, " (the model produced a non-finite logit)");
  }
}

// The CUDA backend's op (core/backend_op.h). MEDIX_CUDA_SAMPLER=gpu samples with the kernels above (the
// CPU's tokens, by construction and emulation, never yet run on a GPU); host (the default until the
// conformance program has passed them on one) copies the logits back and runs cpu::sample: exactly the
// CPU's tokens, at the cost of copying [rows, vocab] logits per decode step.
namespace {

void backend_sample(Backend& be, int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b) {
  be.bind_thread();
  const char* env = std::getenv("MEDIX_CUDA_SAMPLER");
  const std::string mode = env ? env : "host";
  if (mode == "gpu") return sample(tokens, logprobs, logits, b);
  if (mode != "host") fail("MEDIX_CUDA_SAMPLER must be host or gpu, not '", mode, "'");
  std::vector<float> host_logits(static_cast<size_t>(b.rows * b.vocab));
  std::vector<int32_t> host_history(static_cast<size_t>(b.history_offsets[b.rows]));
  be.to_host(host_logits.data(), logits, sizeof(float) * host_logits.size());
  if (!host_history.empty()) be.to_host(host_history.data(), b.history, sizeof(int32_t) * host_history.size());
  std::vector<int32_t> host_tokens(static_cast<size_t>(b.rows));
  std::vector<float> host_logprobs(static_cast<size_t>(b.rows));
  SampleBatch h = b;
  h.history = host_history.data();
  cpu::sample(host_tokens.data(), host_logprobs.data(), host_logits.data(), h);
  be.from_host(tokens, host_tokens.data(), sizeof(int32_t) * host_tokens.size());
  be.from_host(logprobs, host_logprobs.data(), sizeof(float) * host_logprobs.size());
}

}  // namespace

MEDIX_BACKEND_OP("cuda", Sample, backend_sample);

}  // namespace medix::cuda
