// The pieces of the CUDA conformance program that are not about any one op: seeded inputs, device
// buffers, the comparison of a GPU output with the CPU reference, and the JSON summary.
//
// Comparison rule, per output: every element must satisfy |gpu - cpu| <= rtol * |cpu| + atol * scale,
// where scale = max |cpu| over the output (so atol is relative to the output's size, and stays
// meaningful whatever the magnitudes). NaN or inf where the reference is finite always fails.
// Reported: max_abs = max |gpu - cpu|, max_rel = max_abs / scale, and `worst` = the largest
// |gpu - cpu| / allowed over elements (a pass needs worst <= 1).
#pragma once
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"

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

// bf16 on the host as raw bits: round to nearest even (inputs are finite), and back.
inline uint16_t bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_value(uint16_t bits) {
  const uint32_t u = static_cast<uint32_t>(bits) << 16;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}
// Random values that bf16 holds exactly (so the CPU reference sees the GPU's inputs).
inline std::vector<float> random_bf16_values(Rng& rng, int64_t n, float lo, float hi) {
  std::vector<float> v = random_floats(rng, n, lo, hi);
  for (float& x : v) x = bf16_value(bf16_bits(x));
  return v;
}
inline std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_bits(v[i]);
  return out;
}
inline std::vector<float> from_bf16(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = bf16_value(v[i]);
  return out;
}

inline void cuda_ok(cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail(what, ": ", cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

// A device copy of a host vector (or zeroed), freed when it goes out of scope.
template <typename T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(const std::vector<T>& host) : n_(host.size()) {
    cuda_ok(cudaMalloc(reinterpret_cast<void**>(&ptr_), bytes() + 1), "cudaMalloc");  // + 1: valid for n = 0
    if (n_) cuda_ok(cudaMemcpy(ptr_, host.data(), bytes(), cudaMemcpyHostToDevice), "cudaMemcpy to device");
  }
  explicit DeviceBuffer(size_t n) : n_(n) {
    cuda_ok(cudaMalloc(reinterpret_cast<void**>(&ptr_), bytes() + 1), "cudaMalloc");
    cuda_ok(cudaMemset(ptr_, 0, bytes()), "cudaMemset");
  }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return ptr_; }
  std::vector<T> to_host() const {
    std::vector<T> host(n_);
    if (n_) cuda_ok(cudaMemcpy(host.data(), ptr_, bytes(), cudaMemcpyDeviceToHost), "cudaMemcpy to host");
    return host;
  }

 private:
  size_t bytes() const { return sizeof(T) * n_; }
  T* ptr_ = nullptr;
  size_t n_;
};

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

// One op at one shape: its output checks, whether two GPU runs gave the same bits, and timings.
struct OpResult {
  std::string op, shape;
  std::vector<OutputCheck> checks;
  bool deterministic = true;
  bool gpu_ran = false;
  double gpu_ms = 0.0, cpu_ms = 0.0;
  std::string error;    // an exception from the GPU or CPU side
  std::string not_run;  // why the GPU side could not run at all (a missing library): neither pass nor fail
  bool pass() const {
    if (!error.empty() || !deterministic) return false;
    for (const OutputCheck& c : checks)
      if (!c.pass) return false;
    return true;
  }
};

inline bool same_bits(const Outputs& a, const Outputs& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, v] : a) {
    const auto it = b.find(name);
    if (it == b.end() || it->second.size() != v.size()) return false;
    if (std::memcmp(v.data(), it->second.data(), sizeof(float) * v.size()) != 0) return false;
  }
  return true;
}

inline double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

// Times the GPU work a case launches between start() and stop() (CUDA events on the default stream).
class GpuTimer {
 public:
  GpuTimer() {
    cuda_ok(cudaEventCreate(&begin_), "cudaEventCreate");
    cuda_ok(cudaEventCreate(&end_), "cudaEventCreate");
  }
  ~GpuTimer() {
    cudaEventDestroy(begin_);
    cudaEventDestroy(end_);
  }
  void start() { cuda_ok(cudaEventRecord(begin_), "cudaEventRecord"); }
  void stop() {
    cuda_ok(cudaEventRecord(end_), "cudaEventRecord");
    cuda_ok(cudaEventSynchronize(end_), "cudaEventSynchronize (a kernel failed?)");
    float ms = 0.0f;
    cuda_ok(cudaEventElapsedTime(&ms, begin_, end_), "cudaEventElapsedTime");
    ms_ = ms;
  }
  double ms() const { return ms_; }

 private:
  cudaEvent_t begin_{}, end_{};
  double ms_ = 0.0;
};

inline std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20)
      out += ' ';
    else
      out += ch;
  }
  return out;
}

inline std::string json_number(double x) {
  if (std::isnan(x)) return "\"nan\"";
  if (std::isinf(x)) return x > 0 ? "\"inf\"" : "\"-inf\"";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", x);
  return buf;
}

}  // namespace medix::conformance
