// Seeded inputs and the comparison of an output with its CPU reference, shared by the CUDA conformance
// program (conformance_harness.h) and the op-table conformance program (op_conformance.cc). Plain C++.
//
// Comparison rule, per output: every element must satisfy |got - cpu| <= rtol * |cpu| + atol * scale,
// where scale = max |cpu| over the output (so atol is relative to the output's size, and stays
// meaningful whatever the magnitudes). NaN or inf where the reference is finite always fails.
// Reported: max_abs = max |got - cpu|, max_rel = max_abs / scale, and `worst` = the largest
// |got - cpu| / allowed over elements (a pass needs worst <= 1).
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace medix::conformance {

// xorshift64*: inputs are the same on every run and machine.
struct Rng {
  uint64_t state;
  explicit Rng(uint64_t seed) : state(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 0x2545F4914F6CDD1Dull;
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * static_cast<float>((next() >> 40) * 0x1p-24); }
  int32_t below(int64_t n) { return static_cast<int32_t>(next() % static_cast<uint64_t>(n)); }
};

inline std::vector<float> random_floats(Rng& rng, int64_t n, float lo, float hi) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = rng.uniform(lo, hi);
  return v;
}

// Named outputs of one run of an op (forward values and gradients, flattened to float).
using Outputs = std::map<std::string, std::vector<float>>;

struct Tolerance {
  double rtol = 0.0, atol = 0.0;  // atol is relative to the output's max |cpu|, see the file comment
};

struct OutputCheck {
  std::string name;
  double max_abs = 0.0, max_rel = 0.0, worst = 0.0;
  Tolerance tol;
  bool pass = true;
  std::string note;  // why it failed, when it did
};

inline OutputCheck compare(const std::string& name, const std::vector<float>& gpu, const std::vector<float>& cpu,
                           Tolerance tol) {
  OutputCheck c;
  c.name = name;
  c.tol = tol;
  if (gpu.size() != cpu.size()) {
    c.pass = false;
    c.note = "size " + std::to_string(gpu.size()) + " vs " + std::to_string(cpu.size());
    return c;
  }
  double scale = 0.0;
  for (float x : cpu)
    if (std::isfinite(x)) scale = std::max(scale, static_cast<double>(std::fabs(x)));
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double r = cpu[i], g = gpu[i];
    if (!std::isfinite(g) || !std::isfinite(r)) {
      if (std::isfinite(r) || !(std::isnan(r) ? std::isnan(g) : g == r)) {
        if (c.pass) c.note = "non-finite mismatch at element " + std::to_string(i);
        c.pass = false;
        c.worst = INFINITY;
      }
      continue;
    }
    const double d = std::fabs(g - r);
    const double allowed = tol.rtol * std::fabs(r) + tol.atol * scale;
    c.max_abs = std::max(c.max_abs, d);
    const double ratio = d == 0.0 ? 0.0 : allowed > 0.0 ? d / allowed : INFINITY;
    if (ratio > c.worst) c.worst = ratio;
    if (d > allowed && c.pass) {
      c.pass = false;
      std::ostringstream os;
      os << "element " << i << ": gpu " << g << " cpu " << r << " allowed " << allowed;
      c.note = os.str();
    }
  }
  c.max_rel = scale > 0.0 ? c.max_abs / scale : c.max_abs;
  return c;
}

}  // namespace medix::conformance
