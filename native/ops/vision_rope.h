// 2D rotary embedding of the Qwen3-VL vision attention. With D = head_dim and q = D/4, the D/2
// rotation angles of a patch at (row, col) are row * f_0..f_{q-1} followed by col * f_0..f_{q-1},
// f_i = theta^(-2i / (D/2)); element j of a head pairs with element j + D/2 ("rotate half").
#pragma once
#include <cstdint>

namespace medix::cpu {

// x, out: [T, heads, D]; coords: [T, 2] (row, col). out may equal x.
void vision_rope_forward(float* out, const float* x, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                         float theta);
// dx += R(-angle) dout
void vision_rope_backward(float* dx, const float* dout, const int32_t* coords, int64_t T, int64_t heads, int64_t D,
                          float theta);

}  // namespace medix::cpu
