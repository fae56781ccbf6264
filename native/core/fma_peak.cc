#include "fma_peak.h"

#include <algorithm>
#include <atomic>
#include <chrono>

#include "cpu_features.h"
#include "error.h"
#include "threads.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define MEDIX_FMA_PROBE 1
#endif

namespace medix {
namespace {

#ifdef MEDIX_FMA_PROBE
// Independent accumulators: more than FMA latency (4 cycles) x ports (2) on current x86 cores, so the
// ports never wait for a result; all of them plus the two operands stay in registers (16 ymm, 32 zmm).
constexpr int kAvx2Chains = 12;
constexpr int kAvx512Chains = 24;

// acc = acc * m + a with m slightly below 1: the values stay finite and normal however long it runs.
// Intrinsics, not vector extensions, so that each step is one FMA instruction whatever -ffp-contract says.
// Returns a value depending on every chain so that none can be dropped.
[[gnu::target("avx2,fma")]] float avx2_chains(int64_t iters) {
  const __m256 m = _mm256_set1_ps(0.999999f), a = _mm256_set1_ps(1e-3f);
  __m256 acc[kAvx2Chains];
  for (int c = 0; c < kAvx2Chains; ++c) acc[c] = _mm256_set1_ps(float(c));
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 16
    for (int c = 0; c < kAvx2Chains; ++c) acc[c] = _mm256_fmadd_ps(acc[c], m, a);
  __m256 sum = acc[0];
  for (int c = 1; c < kAvx2Chains; ++c) sum = _mm256_add_ps(sum, acc[c]);
  return _mm256_cvtss_f32(sum);
}

[[gnu::target("avx512f")]] float avx512_chains(int64_t iters) {
  const __m512 m = _mm512_set1_ps(0.999999f), a = _mm512_set1_ps(1e-3f);
  __m512 acc[kAvx512Chains];
  for (int c = 0; c < kAvx512Chains; ++c) acc[c] = _mm512_set1_ps(float(c));
  for (int64_t i = 0; i < iters; ++i)
#pragma GCC unroll 32
    for (int c = 0; c < kAvx512Chains; ++c) acc[c] = _mm512_fmadd_ps(acc[c], m, a);
  __m512 sum = acc[0];
  for (int c = 1; c < kAvx512Chains; ++c) sum = _mm512_add_ps(sum, acc[c]);
  return _mm512_cvtss_f32(sum);
}
#endif

}  // namespace

FmaPeak measure_fma_peak(int repeats, double ms) {
  MEDIX_CHECK(repeats >= 1 && ms > 0, "measure_fma_peak: need repeats >= 1 and ms > 0");
#ifdef MEDIX_FMA_PROBE
  const bool wide = cpu_features().avx512;
  const int chains = wide ? kAvx512Chains : kAvx2Chains;
  const int lanes = wide ? 16 : 8;
  const auto run = [wide](int64_t iters) { return wide ? avx512_chains(iters) : avx2_chains(iters); };
  const int threads = num_threads();
  std::atomic<float> sink{0.0f};
  // One timed run on this thread sets the iteration count for about `ms` per run.
  int64_t iters = 1 << 16;
  const auto t0 = std::chrono::steady_clock::now();
  sink.store(run(iters));
  const double calib = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  iters = std::max<int64_t>(iters, static_cast<int64_t>(iters * (ms / 1000.0) / std::max(calib, 1e-6)));
  double best = 0.0;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    parallel_for(
        threads, [&](int64_t, int64_t) { sink.store(run(iters)); }, 1);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, 2.0 * lanes * chains * static_cast<double>(iters) * threads / s / 1e9);
  }
  MEDIX_CHECK(sink.load() == sink.load(), "measure_fma_peak: the probe produced NaN");
  return {best, wide ? "AVX-512" : "AVX2+FMA"};
#else
  (void)repeats, (void)ms;
  return {0.0, "none"};
#endif
}

}  // namespace medix
