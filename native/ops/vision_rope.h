// 2D rotary embedding of the Qwen3-VL vision attention. With D = head_dim and q = D/4, the D/2
// rotation angles of a patch at (row, col) are row * f_0..f_{q-1} followed by col * f_0..f_{q-1},
// f_i = theta^(-2i / (D/2)); element j of a head pairs with element j + D/2 ("rotate half").
#pragma once
#include <cstdint>
#include <vector>
#include "../core/backend_op.h"

namespace medix::cpu {

// f_0..f_{D/4-1}, each rounded to float32 from double (see vision_rope.cc). kernels/vision_rope.cu turns by
// these same values, so the two backends' angles agree to the bit.
std::vector<float> vision_rope_inverse_frequencies(int64_t D, float theta);

// x, out: [T, heads, D]; coords: [T, 2] (row, col). out may equal x.
void vision_rope_forward(float* out, const float* x, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                         float theta);
// dx += R(-angle) dout
void vision_rope_backward(float* dx, const float* dout, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                          float theta);

}  // namespace medix::cpu

namespace medix {

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct VisionRopeForward : BackendOp<VisionRopeForward, decltype(cpu::vision_rope_forward)> {
  static constexpr const char* name = "vision_rope_forward";
  static constexpr OpKind kind = OpKind::Rope;
  static constexpr OpArg args[] = {{"out"}, {"x"}, {"coords"}, {"T"}, {"heads"}, {"D"}, {"theta"}};
};
struct VisionRopeBackward : BackendOp<VisionRopeBackward, decltype(cpu::vision_rope_backward)> {
  static constexpr const char* name = "vision_rope_backward";
  static constexpr OpKind kind = OpKind::Rope;
  static constexpr OpArg args[] = {{"dx"}, {"dout"}, {"coords"}, {"T"}, {"heads"}, {"D"}, {"theta"}};
};

}  // namespace medix
