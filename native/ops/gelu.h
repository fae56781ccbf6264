// GELU activations of the Qwen3-VL vision tower: the tanh approximation (hidden_act
// "gelu_pytorch_tanh", the blocks' MLP) and the exact erf form (nn.GELU(), the patch mergers).
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

namespace medix::cpu {

enum class GeluKind { kTanh, kErf };

void gelu_forward(float* out, const float* x, int64_t n, GeluKind kind);
// dx += dout * gelu'(x)
void gelu_backward(float* dx, const float* dout, const float* x, int64_t n, GeluKind kind);

}  // namespace medix::cpu

namespace medix {

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct GeluForward : BackendOp<GeluForward, decltype(cpu::gelu_forward)> {
  static constexpr const char* name = "gelu_forward";
  static constexpr OpKind kind = OpKind::Elementwise;
  static constexpr OpArg args[] = {{"out"}, {"x"}, {"n"}, {"kind"}};
};
struct GeluBackward : BackendOp<GeluBackward, decltype(cpu::gelu_backward)> {
  static constexpr const char* name = "gelu_backward";
  static constexpr OpKind kind = OpKind::Elementwise;
  static constexpr OpArg args[] = {{"dx"}, {"dout"}, {"x"}, {"n"}, {"kind"}};
};

}  // namespace medix
