// The parts of the portable GEMM every register kernel shares: the rounding of a tile into C and the
// block sizes. Compiled once, for the build's base target, whichever kernel calls it.
#include <algorithm>
#include <cmath>

#include "cpu_features.h"
#include "gemm_micro.h"

namespace medix {

void gemm_update_tile(const float* acc, int64_t ts, float* C, int64_t ldc, int64_t m, int64_t n, float alpha,
                      float beta, bool first) {
  for (int64_t r = 0; r < m; ++r) {
    const float* a = acc + r * ts;
    float* c = C + r * ldc;
    if (!first)
      for (int64_t j = 0; j < n; ++j) c[j] = std::fma(alpha, a[j], c[j]);
    else if (beta == 0.0f)
      for (int64_t j = 0; j < n; ++j) c[j] = alpha * a[j];
    else
      for (int64_t j = 0; j < n; ++j) c[j] = std::fma(alpha, a[j], beta * c[j]);
  }
}

// The mc x kc block of A takes half of L2 (the other half holds the B micro-panels streaming past and
// C); the kc x nc panel of B a quarter of L3, at most 2048 columns (measured: wider panels gained
// nothing on a 2-core Zen 5, 1 MiB L2).
void gemm_blocking(int64_t mr, int64_t nr, int64_t* mc, int64_t* nc) {
  const CpuFeatures& f = cpu_features();
  const int64_t kc_bytes = kGemmMaxKc * static_cast<int64_t>(sizeof(float));
  *mc = std::max(mr, f.l2_bytes / 2 / kc_bytes / mr * mr);
  *nc = std::clamp(f.l3_bytes / 4 / kc_bytes / nr * nr, nr, 2048 / nr * nr);
}

}  // namespace medix
