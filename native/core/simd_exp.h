// exp(x) over a vector of any width (GCC/Clang vector extensions), so that an AVX-512 file can compile
// the same operations on 16 lanes that simd.h's exp8 runs on 8: each lane goes through the same
// sequence of roundings whatever the width, hence the same bits.
//
// To about 2 ulp: x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-6 polynomial (Cephes expf
// coefficients), 2^n put straight into the exponent bits. Inputs are clamped to [-87, 88] so 2^n stays
// a normal float; below that exp would underflow, and a value of exp(-87) ~ 1.6e-38 instead of 0 never
// matters next to a softmax's largest term, exp(0) = 1.
// A file compiled for a wider target includes it after its target pragma (and not simd.h, which
// includes it for the base target).
#pragma once

namespace medix::simd {

// V: float lanes, I: int32 lanes of the same count.
template <class V, class I>
inline V exp_lanes(V x) {
  const V lo = V{} - 87.0f, hi = V{} + 88.0f;
  x = x < lo ? lo : x;
  x = x > hi ? hi : x;
  const V t = x * 1.44269504088896341f + 0.5f;  // x / ln2 rounded below: floor(t)
  V n = __builtin_convertvector(__builtin_convertvector(t, I), V);
  n = n > t ? n - 1.0f : n;  // the conversion truncates towards zero; make it a floor
  // ln2 split in a part exact in float and a small correction, so r keeps its low bits.
  const V r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  V p = V{} + 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const I exponent = (__builtin_convertvector(n, I) + 127) << 23;
  return p * (V)exponent;  // a vector cast reinterprets the bits
}

}  // namespace medix::simd
