#include "bandwidth.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>

#include "backend.h"
#include "error.h"
#include "threads.h"

namespace medix {

double measure_read_bandwidth(size_t bytes, int repeats) {
  MEDIX_CHECK(bytes >= 4096 && repeats >= 1, "measure_read_bandwidth: need bytes >= 4096 and repeats >= 1");
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float)) / 64 * 64;
  // The backend's allocation, zeroed and on huge pages like the model's weights: the limit is what
  // the machine gives the best-placed buffer, not one the engine never reads from.
  Backend& be = cpu_backend();
  float* data = static_cast<float*>(be.alloc(sizeof(float) * n));
  std::atomic<bool> nonzero{false};  // depends on every load, so the compiler cannot drop them
  double best = 0.0;
  for (int r = 0; r <= repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    parallel_for(
        n / 64,
        [&](int64_t b0, int64_t b1) {
          // 32 independent lanes: the compiler keeps them in vector registers without reordering sums.
          float acc[32] = {};
          for (int64_t i = b0 * 64; i < b1 * 64; i += 32)
            for (int j = 0; j < 32; ++j) acc[j] += data[i + j];
          float total = 0.0f;
          for (float a : acc) total += a;
          if (total != 0.0f) nonzero.store(true);
        },
        1 << 12);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (r > 0) best = std::max(best, static_cast<double>(n) * sizeof(float) / s);
  }
  be.release(data);
  MEDIX_CHECK(!nonzero.load(), "measure_read_bandwidth: the zeroed buffer read back nonzero");
  return best;
}

}  // namespace medix
