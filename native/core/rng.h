// Counter-based random numbers: value i of stream `seed` is a pure function of (seed, i), so
// initialisation is reproducible and independent of thread count or call order.
#pragma once
#include <cmath>
#include <cstdint>

namespace medix {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Uniform in (0, 1): 24 random bits, never exactly 0 (safe for log).
inline float uniform01(uint64_t seed, uint64_t i) {
  const uint64_t r = splitmix64(seed * 0xD1B54A32D192ED03ull + i);
  return (static_cast<float>(r >> 40) + 0.5f) * (1.0f / 16777216.0f);
}

// Standard normal via Box-Muller on two counter-derived uniforms.
inline float normal01(uint64_t seed, uint64_t i) {
  const float u1 = uniform01(seed, 2 * i), u2 = uniform01(seed, 2 * i + 1);
  return std::sqrt(-2.0f * std::log(u1)) * std::cos(6.28318530717958647692f * u2);
}

}  // namespace medix
