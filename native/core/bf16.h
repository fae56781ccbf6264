// bfloat16 storage: the upper 16 bits of an IEEE float (8-bit exponent, 7-bit mantissa), held as
// uint16_t. Weights are stored in it to halve the bytes a bandwidth-bound product reads; arithmetic
// stays in f32 (a bf16 value widens to f32 exactly).
//
// f32 -> bf16 is defined as AVX512-BF16's VCVTNEPS2BF16 computes it, so every path below gives the
// same bits and a model's bf16 copy does not depend on the CPU it was made on:
//   NaN               -> its upper half with the quiet bit (bf16 bit 6) set (sign and payload kept)
//   zero or denormal  -> zero of the same sign (the instruction treats denormal inputs as zero)
//   otherwise         -> rounded to nearest, ties to even (so a large finite value may become inf)
// A normal f32 never rounds to a bf16 denormal (both have the same exponent range).
#pragma once
#include <cstdint>
#include <vector>

#include "backend_op.h"

namespace medix {

// The dtype a model computes its products in (its master weights stay f32).
enum class ComputeDType { f32 = 0, bf16 = 1 };
const char* compute_dtype_name(ComputeDType d);                        // "f32", "bf16"
ComputeDType parse_compute_dtype(const char* name, const char* what);  // throws naming `what` and the accepted names

// The conversion's vector paths, widest last: "scalar" always, "avx2" on x86-64 builds with AVX2,
// "avx512bf16" when the CPU has AVX512-BF16 (cpu_features).
enum class Bf16Path { Scalar = 0, Avx2 = 1, Avx512Bf16 = 2 };
std::vector<Bf16Path> bf16_paths();  // those this CPU and build can run
Bf16Path bf16_best_path();
const char* bf16_path_name(Bf16Path p);

// The CUDA kernels (kernels/) convert with these same functions, so both backends give the same bits.
#ifdef __CUDACC__
#define MEDIX_HOST_DEVICE __host__ __device__
#else
#define MEDIX_HOST_DEVICE
#endif

// The direct formula for one value (the definition above), for tests and tails.
MEDIX_HOST_DEVICE inline uint16_t f32_to_bf16_scalar(float x) {
  uint32_t b;
  __builtin_memcpy(&b, &x, 4);
  if ((b & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((b >> 16) | 0x40u);
  if ((b & 0x7f800000u) == 0) return static_cast<uint16_t>((b >> 16) & 0x8000u);
  return static_cast<uint16_t>((b + 0x7fffu + ((b >> 16) & 1u)) >> 16);
}
MEDIX_HOST_DEVICE inline float bf16_to_f32_scalar(uint16_t h) {
  const uint32_t b = static_cast<uint32_t>(h) << 16;
  float x;
  __builtin_memcpy(&x, &b, 4);
  return x;
}

// Single-threaded conversions of n values with the given path (the best one by default).
void f32_to_bf16(uint16_t* dst, const float* src, int64_t n, Bf16Path p);
void f32_to_bf16(uint16_t* dst, const float* src, int64_t n);
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n, Bf16Path p);
void bf16_to_f32(float* dst, const uint16_t* src, int64_t n);
// Multi-threaded, best path (a model's compute copy). Must not be called from inside parallel_for.
void f32_to_bf16_parallel(uint16_t* dst, const float* src, int64_t n);

// Multi-threaded widening (full sharding's bf16 gathers, placed in the f32 layout too).
void bf16_to_f32_parallel(float* dst, const uint16_t* src, int64_t n);

// Backend op (backend_op.h): a compute copy's conversion, f32_to_bf16_parallel's arguments.
struct ToBf16 : BackendOp<ToBf16, decltype(f32_to_bf16_parallel)> {
  static constexpr const char* name = "to_bf16";
  static constexpr OpKind kind = OpKind::Elementwise;
  static constexpr OpArg args[] = {{"dst"}, {"src"}, {"n"}};
};
// Backend op: bf16 values widened to f32 (exactly), bf16_to_f32_parallel's arguments.
struct FromBf16 : BackendOp<FromBf16, decltype(bf16_to_f32_parallel)> {
  static constexpr const char* name = "from_bf16";
  static constexpr OpKind kind = OpKind::Elementwise;
  static constexpr OpArg args[] = {{"dst"}, {"src"}, {"n"}};
};

}  // namespace medix
