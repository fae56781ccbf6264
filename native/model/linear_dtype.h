// A linear layer on its f32 weights, or on their bf16 compute copy when the model computes in bf16
// (W16 not null): the decoder's projections and the vision tower's choose the same way.
#pragma once
#include <cstdint>

#include "../core/backend.h"
#include "../ops/linear.h"

namespace medix {

inline void linear_forward_as(Backend& be, float* y, const float* x, const float* W, const uint16_t* W16,
                              const float* b, int64_t T, int64_t in, int64_t out) {
  if (W16)
    be.run<LinearForwardBf16>(y, x, W16, b, T, in, out);
  else
    be.run<LinearForward>(y, x, W, b, T, in, out);
}

inline void linear_backward_as(Backend& be, float* dx, float* dW, float* db, const float* dy, const float* x,
                               const float* W, const uint16_t* W16, int64_t T, int64_t in, int64_t out) {
  if (W16)
    be.run<LinearBackwardBf16>(dx, dW, db, dy, x, W16, T, in, out);
  else
    be.run<LinearBackward>(dx, dW, db, dy, x, W, T, in, out);
}

}  // namespace medix
