// Eight-lane float vectors (GCC/Clang vector extensions: AVX on x86-64-v3, lowered elsewhere) and
// the row helpers the softmax-like ops share (the fused log-prob head, the sampler).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "simd_exp.h"

namespace medix::simd {

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
constexpr int64_t kLanes = 8;

inline v8f splat(float x) { return v8f{} + x; }

inline v8f load(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Eight bf16 values (bf16.h) widened to f32, exactly: each one's bits shifted into the upper half.
inline v8f load(const uint16_t* p) {
  typedef uint16_t v8u16 __attribute__((vector_size(16)));
  typedef uint32_t v8u32 __attribute__((vector_size(32)));
  v8u16 h;
  std::memcpy(&h, p, sizeof h);
  return (v8f)(__builtin_convertvector(h, v8u32) << 16);  // a vector cast reinterprets the bits
}

inline void store(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }

// The first n < 8 elements of p; the other lanes hold `fill`.
inline v8f load_partial(const float* p, int64_t n, float fill) {
  float tmp[kLanes];
  for (int64_t k = 0; k < kLanes; ++k) tmp[k] = k < n ? p[k] : fill;
  return load(tmp);
}

inline void store_partial(float* p, v8f v, int64_t n) {
  float tmp[kLanes];
  store(tmp, v);
  for (int64_t k = 0; k < n; ++k) p[k] = tmp[k];
}

// Lane k is all-ones where k < n.
inline v8i lanes_below(int64_t n) {
  const v8i index = {0, 1, 2, 3, 4, 5, 6, 7};
  return index < static_cast<int32_t>(n);
}

// exp(x) on eight lanes: simd_exp.h's polynomial, about 2 ulp.
inline v8f exp8(v8f x) { return exp_lanes<v8f, v8i>(x); }

inline float hmax(v8f v) {
  float m = v[0];
  for (int k = 1; k < kLanes; ++k) m = std::max(m, v[k]);
  return m;
}

inline float hsum(v8f v) {
  float s = 0.0f;
  for (int k = 0; k < kLanes; ++k) s += v[k];
  return s;
}

// In place z[j] <- exp(z[j] - m) for j < n (exp8's accuracy, the tail through the same vector
// code, so a value's bits never depend on where a row or a thread's range ends); returns their sum,
// eight lane sums in order, then the lanes as hsum adds them.
inline float exp_shifted_inplace(float* z, int64_t n, float m) {
  const v8f mv = splat(m);
  v8f sum{};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const v8f e = exp8(load(z + j) - mv);
    store(z + j, e);
    sum += e;
  }
  if (j < n) {
    const v8f e = lanes_below(n - j) ? exp8(load_partial(z + j, n - j, m) - mv) : splat(0.0f);
    store_partial(z + j, e, n - j);
    sum += e;
  }
  return hsum(sum);
}

inline float row_max(const float* z, int64_t n) {
  v8f m = splat(-INFINITY);
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes) {
    const v8f x = load(z + j);
    m = x > m ? x : m;
  }
  if (j < n) {
    const v8f x = load_partial(z + j, n - j, -INFINITY);
    m = x > m ? x : m;
  }
  return hmax(m);
}

// In place: z[0, n) becomes its softmax (n >= 1); returns the log-sum-exp. The max is subtracted
// before exp, so no term exceeds 1 and the sum (>= 1, the max term is exp(0)) cannot overflow.
inline float softmax_inplace(float* z, int64_t n) {
  const float m = row_max(z, n);
  const float sum = exp_shifted_inplace(z, n, m);
  const float inv = 1.0f / sum;
  for (int64_t j = 0; j < n; ++j) z[j] *= inv;
  return m + std::log(sum);
}

}  // namespace medix::simd
