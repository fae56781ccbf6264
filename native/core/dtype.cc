#include "dtype.h"

#include "error.h"

namespace medix {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32:
      return "f32";
    case DType::BF16:
      return "bf16";
    case DType::I32:
      return "i32";
    case DType::F64:
      return "f64";
  }
  return "?";
}

DType parse_dtype(const std::string& name) {
  if (name == "f32") return DType::F32;
  if (name == "bf16") return DType::BF16;
  fail("unknown dtype '", name, "' (f32, bf16)");
}

size_t dtype_bytes(DType d) { return d == DType::BF16 ? 2 : d == DType::F64 ? 8 : 4; }

}  // namespace medix
