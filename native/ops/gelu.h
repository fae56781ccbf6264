// GELU activations of the Qwen3-VL vision tower: the tanh approximation (hidden_act
// "gelu_pytorch_tanh", the blocks' MLP) and the exact erf form (nn.GELU(), the patch mergers).
#pragma once
#include <cstdint>

namespace medix::cpu {

enum class GeluKind { kTanh, kErf };

void gelu_forward(float* out, const float* x, int64_t n, GeluKind kind);
// dx += dout * gelu'(x)
void gelu_backward(float* dx, const float* dout, const float* x, int64_t n, GeluKind kind);

}  // namespace medix::cpu
