// SwiGLU gating of the Qwen3 MLP: out = silu(gate) * up, silu(x) = x * sigmoid(x).
// (The three projections around it are linear ops.)
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

namespace medix {

namespace cpu {

void swiglu_forward(float* out, const float* gate, const float* up, int64_t n);
void swiglu_backward(float* dgate, float* dup, const float* dout, const float* gate, const float* up, int64_t n);

}  // namespace cpu

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct SwigluForward : BackendOp<SwigluForward, decltype(cpu::swiglu_forward)> {
  static constexpr const char* name = "swiglu_forward";
  static constexpr OpKind kind = OpKind::Elementwise;
  static constexpr OpArg args[] = {{"out"}, {"gate"}, {"up"}, {"n"}};
};
struct SwigluBackward : BackendOp<SwigluBackward, decltype(cpu::swiglu_backward)> {
  static constexpr const char* name = "swiglu_backward";
  static constexpr OpKind kind = OpKind::Elementwise;
  static constexpr OpArg args[] = {{"dgate"}, {"dup"}, {"dout"}, {"gate"}, {"up"}, {"n"}};
};

}  // namespace medix
