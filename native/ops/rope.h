// Rotary position embedding, "rotate half" pairing as in Hugging Face Qwen models: element j of a
// head is paired with element j + head_dim/2 and rotated by angle pos * theta^(-2j/head_dim).
//
// Multi-section rope (Qwen2-VL / Qwen3-VL text models): positions have P components (P = 3: time,
// height, width) and each frequency j takes its position from component freq_component[j].
// Standard rope is P = 1 with freq_component = null (all zero).
#pragma once
#include <cstdint>
#include <vector>
#include "../core/backend_op.h"

namespace medix {

struct RopeSpec {
  int64_t head_dim = 0;
  float theta = 10000.0f;
  int n_components = 1;                     // P
  const uint8_t* freq_component = nullptr;  // [head_dim/2] values in [0, P), or null for all 0
};

// Which position component each of the head_dim/2 frequencies uses.
//   contiguous (Qwen2-VL): sections [s0, s1, s2] cover frequencies in order: s0 of T, s1 of H, s2 of W.
//   interleaved (Qwen3-VL): frequency j uses H if j % 3 == 1 and j < 3*s1, W if j % 3 == 2 and
//   j < 3*s2, T otherwise.
std::vector<uint8_t> rope_section_map(int64_t head_dim, const std::vector<int64_t>& sections, bool interleaved);

namespace cpu {

// x, out: [T, n_heads, head_dim]; pos: [P, T] (component-major). out may equal x (in place).
void rope_forward(float* out, const float* x, const int32_t* pos, int64_t T, int64_t n_heads, const RopeSpec& spec);
// dx += R(-angle) dout (the transpose of the rotation).
void rope_backward(float* dx, const float* dout, const int32_t* pos, int64_t T, int64_t n_heads, const RopeSpec& spec);

}  // namespace cpu

// The pointers in a RopeSpec, for the device-memory guard (core/backend_op.h).
inline void visit_memory(MemoryArgs& m, const RopeSpec& s) {
  m.push_back({"spec.freq_component", s.freq_component, true});
}

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct RopeForward : BackendOp<RopeForward, decltype(cpu::rope_forward)> {
  static constexpr const char* name = "rope_forward";
  static constexpr OpKind kind = OpKind::Rope;
  static constexpr OpArg args[] = {{"out"}, {"x"}, {"pos"}, {"T"}, {"n_heads"}, {"spec"}};
};
struct RopeBackward : BackendOp<RopeBackward, decltype(cpu::rope_backward)> {
  static constexpr const char* name = "rope_backward";
  static constexpr OpKind kind = OpKind::Rope;
  static constexpr OpArg args[] = {{"dx"}, {"dout"}, {"pos"}, {"T"}, {"n_heads"}, {"spec"}};
};

}  // namespace medix
