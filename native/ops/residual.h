// Residual add. Forward: out = a + b. Backward of a sum is a copy of dout into both inputs, which
// callers express with add_inplace (dst += src).
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

namespace medix {

namespace cpu {

void add_forward(float* out, const float* a, const float* b, int64_t n);
void add_inplace(float* dst, const float* src, int64_t n);

}  // namespace cpu

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct AddForward : BackendOp<AddForward, decltype(cpu::add_forward)> {
  static constexpr const char* name = "add_forward";
  static constexpr OpKind kind = OpKind::Elementwise;
  static constexpr OpArg args[] = {{"out"}, {"a"}, {"b"}, {"n"}};
};
struct AddInplace : BackendOp<AddInplace, decltype(cpu::add_inplace)> {
  static constexpr const char* name = "add_inplace";
  static constexpr OpKind kind = OpKind::Elementwise;
  static constexpr OpArg args[] = {{"dst"}, {"src"}, {"n"}};
};

}  // namespace medix
