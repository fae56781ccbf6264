// Residual connections: elementwise sums.
#include "residual.h"

#include "../core/threads.h"

namespace medix::cpu {

// Below this many elements a thread hand-off costs more than the adds themselves.
constexpr int64_t kMinChunk = 1 << 14;

void add_forward(float* out, const float* a, const float* b, int64_t n) {
  parallel_for(
      n,
      [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) out[i] = a[i] + b[i];
      },
      kMinChunk);
}

void add_inplace(float* dst, const float* src, int64_t n) {
  parallel_for(
      n,
      [&](int64_t s, int64_t e) {
        for (int64_t i = s; i < e; ++i) dst[i] += src[i];
      },
      kMinChunk);
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(AddForward, cpu::add_forward);
MEDIX_CPU_OP(AddInplace, cpu::add_inplace);
}  // namespace medix
