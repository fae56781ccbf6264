// SwiGLU gating of the Qwen3 MLP: out = silu(gate) * up, silu(x) = x * sigmoid(x).
// (The three projections around it are linear ops.)
#pragma once
#include <cstdint>

namespace medix {

namespace cpu {

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

}  // namespace cpu
}  // namespace medix
