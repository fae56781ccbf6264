// Element types, one vocabulary for the op table's arguments and the collectives' buffers (one
// definition: two enums named medix::DType in one program would break the one-definition rule).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace medix {

// bf16 is raw bits (core/bf16.h). Ops take f32, bf16 (the weights of a product, a KV cache) and i32
// (indices); the collectives carry f32, f64 and bf16 (check_summable keeps bf16 out of sums).
enum class DType : uint8_t { F32, BF16, I32, F64 };
const char* dtype_name(DType d);             // "f32", "bf16", "i32", "f64"
DType parse_dtype(const std::string& name);  // an op entry's dtype: "f32" | "bf16"; throws naming the accepted names
size_t dtype_bytes(DType d);

}  // namespace medix
