// The pieces of the CUDA conformance program that are not about any one op: bf16 values, device
// buffers, and the JSON summary. Seeded inputs and the comparison rule: conformance_compare.h.
#pragma once
#include <cuda_runtime.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "conformance_compare.h"
#include "core/bf16.h"
#include "core/error.h"

namespace medix::conformance {

// bf16 on the host as raw bits, bf16.h's conversion (the one both backends use), and back.
inline uint16_t bf16_bits(float x) { return f32_to_bf16_scalar(x); }
inline float bf16_value(uint16_t bits) { return bf16_to_f32_scalar(bits); }
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

// Sets an environment variable for a scope and restores it (the backend reads MEDIX_CUDA_LINEAR and
// MEDIX_CUDA_ATTENTION per call).
class EnvScope {
 public:
  EnvScope(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv(name, value, 1);
  }
  ~EnvScope() {
    if (had_)
      setenv(name_, old_.c_str(), 1);
    else
      unsetenv(name_);
  }
  EnvScope(const EnvScope&) = delete;
  EnvScope& operator=(const EnvScope&) = delete;

 private:
  const char* name_;
  bool had_ = false;
  std::string old_;
};

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
