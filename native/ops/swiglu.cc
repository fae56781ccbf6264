// SwiGLU gate of the MLP: out = silu(gate) * up.
#include "swiglu.h"

#include <cmath>

#include "../core/threads.h"

namespace medix::cpu {
namespace {

constexpr int64_t kMinChunk = 1 << 13;

// 1 / (1 + e^-g) written so the exponential never overflows: for g < 0 use e^g / (1 + e^g).
// Large |g| then gives exactly 1 or 0 instead of inf/inf.
inline float sigmoid(float g) {
  if (g >= 0.0f) return 1.0f / (1.0f + std::exp(-g));
  const float e = std::exp(g);
  return e / (1.0f + e);
}

}  // namespace

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n) {
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) out[i] = gate[i] * sigmoid(gate[i]) * up[i];
      },
      kMinChunk);
}

void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n) {
  // d silu(g)/dg = s + g s (1 - s) = s (1 + g (1 - s)), with s = sigmoid(g).
  parallel_for(
      n,
      [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          const float g = gate[i], s = sigmoid(g);
          dgate[i] += dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
          dup[i] += dout[i] * g * s;
        }
      },
      kMinChunk);
}

}  // namespace medix::cpu
