// Residual add. Forward: out = a + b. Backward of a sum is a copy of dout into both inputs, which
// callers express with add_inplace (dst += src).
#pragma once
#include <cstdint>

namespace medix {

namespace cpu {

void add_forward(float* out, const float* a, const float* b, int64_t n);
void add_inplace(float* dst, const float* src, int64_t n);

}  // namespace cpu
}  // namespace medix
