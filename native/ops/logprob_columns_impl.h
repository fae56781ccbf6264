// logprob_columns.h's functions, generic over the vector type; included by each width's file, which
// may compile it for a wider instruction set (in an anonymous namespace, so no copy is merged by the
// linker with one built for another target).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/simd_exp.h"
#include "logprob_columns.h"

namespace medix::cpu {
namespace {

template <class V>
constexpr int64_t kWidth = sizeof(V) / sizeof(float);

// The first n lanes from p, the others `fill`; and the first n lanes of v to p.
template <class V>
inline V load_lanes(const float* p, int64_t n, float fill) {
  V v = V{} + fill;
  if (n == kWidth<V>)
    std::memcpy(&v, p, sizeof v);
  else
    for (int64_t k = 0; k < n; ++k) v[k] = p[k];
  return v;
}

template <class V>
inline void store_lanes(float* p, V v, int64_t n) {
  if (n == kWidth<V>)
    std::memcpy(p, &v, sizeof v);
  else
    for (int64_t k = 0; k < n; ++k) p[k] = v[k];
}

template <class V>
void column_max(const float* zt, int64_t rows, int64_t cols, int64_t ld, float* out) {
  for (int64_t j = 0; j < cols; j += kWidth<V>) {
    const int64_t n = std::min(kWidth<V>, cols - j);
    V mx = V{} - INFINITY;
    for (int64_t r = 0; r < rows; ++r) {
      const V z = load_lanes<V>(zt + r * ld + j, n, -INFINITY);
      mx = z > mx ? z : mx;
    }
    store_lanes(out + j, mx, n);
  }
}

template <class V, class I, bool kEntropy>
void column_exp_sums(const float* zt, int64_t rows, int64_t cols, int64_t ld, const float* m, float* s, float* w) {
  for (int64_t j = 0; j < cols; j += kWidth<V>) {
    const int64_t n = std::min(kWidth<V>, cols - j);
    const V mj = load_lanes<V>(m + j, n, 0.0f);
    V sj{}, wj{};
    for (int64_t r = 0; r < rows; ++r) {
      const V d = load_lanes<V>(zt + r * ld + j, n, 0.0f) - mj;
      const V e = simd::exp_lanes<V, I>(d);
      sj += e;
      if constexpr (kEntropy) wj += e * d;
    }
    store_lanes(s + j, sj, n);
    if constexpr (kEntropy) store_lanes(w + j, wj, n);
  }
}

template <class V, class I>
void column_exp_sums_any(const float* zt, int64_t rows, int64_t cols, int64_t ld, const float* m, float* s, float* w) {
  if (w)
    column_exp_sums<V, I, true>(zt, rows, cols, ld, m, s, w);
  else
    column_exp_sums<V, I, false>(zt, rows, cols, ld, m, s, w);
}

template <class V, class I>
void column_dlogits(float* zt, int64_t rows, int64_t cols, int64_t ld, const float* lse, const float* g, const float* h,
                    const float* c) {
  for (int64_t j = 0; j < cols; j += kWidth<V>) {
    const int64_t n = std::min(kWidth<V>, cols - j);
    const V lj = load_lanes<V>(lse + j, n, 0.0f), gj = load_lanes<V>(g + j, n, 0.0f);
    const V hj = load_lanes<V>(h + j, n, 0.0f), cj = load_lanes<V>(c + j, n, 0.0f);
    for (int64_t r = 0; r < rows; ++r) {
      float* z = zt + r * ld + j;
      const V x = load_lanes<V>(z, n, 0.0f);
      const V p = simd::exp_lanes<V, I>(x - lj);
      store_lanes(z, -(gj * p) - hj * (p * (x + cj)), n);
    }
  }
}

template <class V, class I>
LogprobColumns make_logprob_columns(const char* name) {
  return {name, &column_max<V>, &column_exp_sums_any<V, I>, &column_dlogits<V, I>};
}

}  // namespace
}  // namespace medix::cpu
