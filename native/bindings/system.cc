// System bindings: the thread pool size, the GEMM kernel choice, what the addon was built with, and a
// checked GEMM entry point (tests and benchmarks call it; the engine's ops call the C++ gemm directly).
#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/bandwidth.h"
#include "../core/cpu_features.h"
#include "../core/error.h"
#include "../core/fma_peak.h"
#include "../core/gemm.h"
#include "../core/op_profile.h"
#include "../core/threads.h"
#include "../cuda/devices.h"
#include "../cuda/libraries.h"
#include "../dist/communicator.h"
#include "registry.h"

namespace medix::bindings {
namespace {

std::string compiler_name() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

// The vector instruction set the portable kernel was compiled for (from the compiler's target macros).
std::string simd_name() {
#if defined(__AVX512F__)
  return "AVX-512F";
#elif defined(__AVX2__) && defined(__FMA__)
  return "AVX2+FMA";
#elif defined(__AVX__)
  return "AVX";
#elif defined(__SSE2__)
  return "SSE2";
#elif defined(__ARM_NEON)
  return "NEON";
#else
  return "generic (no SIMD target macros)";
#endif
}

// MEDIX_CUDA_INFO is set by binding.gyp from the toolchain it compiled kernels/*.cu with.
#if defined(MEDIX_HAVE_CUDA)
constexpr bool kCudaBuilt = true;
const char* const kCudaInfo = MEDIX_CUDA_INFO;
#else
constexpr bool kCudaBuilt = false;
const char* const kCudaInfo = "not built into this addon (no nvcc at build time, or MEDIX_NO_CUDA=1)";
#endif

cuda::Library parse_cuda_library(const Napi::Value& v, const std::string& fn) {
  const std::string name = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  for (cuda::Library lib : {cuda::Library::CublasLt, cuda::Library::Nccl, cuda::Library::Cudnn})
    if (name == cuda::library_name(lib)) return lib;
  fail(fn, ": library must be 'cuBLASLt', 'NCCL' or 'cuDNN', got ", v.IsString() ? "'" + name + "'" : "a non-string");
}

std::vector<GemmKernel> available_kernels() {
  std::vector<GemmKernel> out{GemmKernel::Portable};
  if (gemm_openblas_available()) out.push_back(GemmKernel::OpenBLAS);
  return out;
}

// Minimum length of a row-major matrix of `rows` x `cols` stored with leading dimension `ld`.
int64_t needed_length(int64_t rows, int64_t cols, int64_t ld) {
  return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}

void check_matrix(const js::View<float>& v, const char* name, int64_t rows, int64_t cols, int64_t ld,
                  const char* ld_name, const std::string& fn) {
  if (ld < std::max<int64_t>(1, cols))
    fail(fn, ": ", ld_name, " = ", ld, " must be >= max(1, ", cols, ") (the row length of ", name, ")");
  const int64_t need = needed_length(rows, cols, ld);
  if (static_cast<int64_t>(v.length) < need)
    fail(fn, ": ", name, " must have length >= ", need, " (", rows, " rows x ", cols, " columns, ", ld_name, " = ", ld,
         "), got ", v.length);
}

bool overlaps(const js::View<float>& a, const js::View<float>& b) {
  return a.length && b.length && a.data < b.data + b.length && b.data < a.data + a.length;
}

// A fully validated gemm call, parsed from the options object of gemm()/gemmAsync().
struct GemmCall {
  bool trans_a, trans_b;
  int64_t M, N, K, lda, ldb, ldc;
  float alpha, beta;
  js::View<float> A, B, C;

  void run() const { gemm(trans_a, trans_b, M, N, K, alpha, A.data, lda, B.data, ldb, beta, C.data, ldc); }
};

GemmCall parse_gemm(const Napi::Value& arg, const std::string& fn) {
  Napi::Object o = js::object(arg, fn, "options");
  GemmCall g;
  g.trans_a = js::boolean_or(o, "transA", fn, false);
  g.trans_b = js::boolean_or(o, "transB", fn, false);
  g.M = js::integer(o, "M", fn, 0, INT32_MAX);
  g.N = js::integer(o, "N", fn, 0, INT32_MAX);
  g.K = js::integer(o, "K", fn, 0, INT32_MAX);
  g.alpha = static_cast<float>(js::number_or(o, "alpha", fn, 1.0));
  g.beta = static_cast<float>(js::number_or(o, "beta", fn, 0.0));
  // op(A) is M x K: A is stored M x K, or K x M when transposed. Likewise op(B) is K x N.
  const int64_t a_rows = g.trans_a ? g.K : g.M, a_cols = g.trans_a ? g.M : g.K;
  const int64_t b_rows = g.trans_b ? g.N : g.K, b_cols = g.trans_b ? g.K : g.N;
  g.lda = js::integer_or(o, "lda", fn, 1, INT32_MAX, std::max<int64_t>(1, a_cols));
  g.ldb = js::integer_or(o, "ldb", fn, 1, INT32_MAX, std::max<int64_t>(1, b_cols));
  g.ldc = js::integer_or(o, "ldc", fn, 1, INT32_MAX, std::max<int64_t>(1, g.N));
  g.A = js::f32(o.Get("A"), fn, "A");
  g.B = js::f32(o.Get("B"), fn, "B");
  g.C = js::f32(o.Get("C"), fn, "C");
  check_matrix(g.A, "A", a_rows, a_cols, g.lda, "lda", fn);
  check_matrix(g.B, "B", b_rows, b_cols, g.ldb, "ldb", fn);
  check_matrix(g.C, "C", g.M, g.N, g.ldc, "ldc", fn);
  if (overlaps(g.C, g.A)) fail(fn, ": C must not share memory with A (it is written while A is read)");
  if (overlaps(g.C, g.B)) fail(fn, ": C must not share memory with B (it is written while B is read)");
  return g;
}

GemmKernel parse_kernel(const Napi::Value& v, const std::string& fn) {
  const std::string name = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  for (GemmKernel k : {GemmKernel::Portable, GemmKernel::OpenBLAS}) {
    if (name != gemm_kernel_name(k)) continue;
    if (k == GemmKernel::OpenBLAS && !gemm_openblas_available())
      fail(fn, ": kernel 'openblas' is not available: this build has no OpenBLAS (install libopenblas-dev and ",
           "rebuild the addon)");
    return k;
  }
  fail(fn, ": kernel must be 'portable' or 'openblas', got ",
       v.IsString() ? "'" + name + "'" : std::string("a non-string"));
}

}  // namespace

void init_system(Napi::Env env, Napi::Object exports) {
  exports.Set("setThreads", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                set_num_threads(static_cast<int>(js::integer_arg(info[0], "setThreads", "n", 0, 1024)));
                return info.Env().Undefined();
              }));

  exports.Set("threads", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return Napi::Number::New(info.Env(), num_threads());
              }));

  exports.Set("gemmKernels", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const auto kernels = available_kernels();
                Napi::Array out = Napi::Array::New(info.Env(), kernels.size());
                for (size_t i = 0; i < kernels.size(); ++i)
                  out.Set(static_cast<uint32_t>(i), gemm_kernel_name(kernels[i]));
                return out;
              }));

  exports.Set("setGemmKernel", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                set_gemm_kernel(parse_kernel(info[0], "setGemmKernel"));
                return info.Env().Undefined();
              }));

  exports.Set("gemmKernel", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return Napi::String::New(info.Env(), gemm_kernel_name(gemm_kernel()));
              }));

  exports.Set("buildInfo", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                Napi::Object out = Napi::Object::New(info.Env());
                out.Set("openblas", gemm_openblas_available());
                out.Set("openblasInfo", openblas_info());
                out.Set("compiler", compiler_name());
                out.Set("simd", simd_name());
                out.Set("mpi", mpi_compiled());
                out.Set("mpiInfo", mpi_library_version());
                out.Set("cuda", kCudaBuilt);
                out.Set("cudaInfo", kCudaInfo);
                return out;
              }));

  // { count, reason }: the CUDA devices the runtime sees, and why there are none (count 0).
  exports.Set("cudaDevices", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                std::string why =
                    "this build of medix has no CUDA (nvcc was not found when the addon was built, or "
                    "MEDIX_NO_CUDA=1)";
#if defined(MEDIX_HAVE_CUDA)
                const int count = cuda::device_count(&why);
#else
    const int count = 0;
#endif
                Napi::Object out = Napi::Object::New(info.Env());
                out.Set("count", count);
                out.Set("reason", count > 0 ? std::string() : why);
                return out;
              }));

  // Opens an NVIDIA library the way the CUDA backend will (MEDIX_CUDA_LIBS, LD_LIBRARY_PATH, CUDA_HOME,
  // the loader) and returns the file it opened; throws the search's error when it is not found.
  exports.Set("loadCudaLibrary", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return Napi::String::New(info.Env(), cuda::load(parse_cuda_library(info[0], "loadCudaLibrary")).path);
              }));

  exports.Set("gemmMicroKernels", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const auto names = gemm_micro_kernels();
                Napi::Array out = Napi::Array::New(info.Env(), names.size());
                for (size_t i = 0; i < names.size(); ++i) out.Set(static_cast<uint32_t>(i), names[i]);
                return out;
              }));

  exports.Set("gemmMicroKernel", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return Napi::String::New(info.Env(), gemm_micro_kernel());
              }));

  exports.Set("setGemmMicroKernel", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                if (!info[0].IsString()) fail("setGemmMicroKernel: name must be a string");
                set_gemm_micro_kernel(info[0].As<Napi::String>().Utf8Value());
                return info.Env().Undefined();
              }));

  exports.Set("cpuInfo", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const CpuFeatures& f = cpu_features();
                Napi::Object out = Napi::Object::New(info.Env());
                out.Set("features", cpu_feature_names());
                out.Set("l1dBytes", static_cast<double>(f.l1d_bytes));
                out.Set("l2Bytes", static_cast<double>(f.l2_bytes));
                out.Set("l3Bytes", static_cast<double>(f.l3_bytes));
                return out;
              }));

  exports.Set("fmaPeak", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const int64_t repeats = js::integer_arg(info[0], "fmaPeak", "repeats", 1, 100000);
                const int64_t ms = js::integer_arg(info[1], "fmaPeak", "ms", 1, 1000);
                const FmaPeak p = measure_fma_peak(static_cast<int>(repeats), static_cast<double>(ms));
                Napi::Object out = Napi::Object::New(info.Env());
                out.Set("gflops", p.gflops);
                out.Set("isa", p.isa);
                return out;
              }));

  exports.Set("setOpProfiling", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                if (!info[0].IsBoolean()) fail("setOpProfiling: on must be a boolean");
                set_op_profiling(info[0].As<Napi::Boolean>().Value());
                return info.Env().Undefined();
              }));

  exports.Set("takeOpProfile", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                OpTotals totals[static_cast<int>(OpKind::Count)];
                int64_t parallel_calls = 0;
                take_op_profile(totals, &parallel_calls);
                Napi::Object kinds = Napi::Object::New(info.Env());
                for (int i = 0; i < static_cast<int>(OpKind::Count); ++i) {
                  if (totals[i].calls == 0) continue;
                  Napi::Object k = Napi::Object::New(info.Env());
                  k.Set("ms", totals[i].ns / 1e6);
                  k.Set("calls", static_cast<double>(totals[i].calls));
                  k.Set("flops", totals[i].flops);
                  kinds.Set(op_kind_name(static_cast<OpKind>(i)), k);
                }
                Napi::Object out = Napi::Object::New(info.Env());
                out.Set("kinds", kinds);
                out.Set("parallelCalls", static_cast<double>(parallel_calls));
                return out;
              }));

  exports.Set("parallelForCostUs", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const int64_t reps = js::integer_arg(info[0], "parallelForCostUs", "reps", 1, 1 << 20);
                std::atomic<int64_t> sink{0};
                const auto t0 = std::chrono::steady_clock::now();
                for (int64_t r = 0; r < reps; ++r)
                  parallel_for(num_threads(),
                               [&](int64_t b, int64_t e) { sink.fetch_add(e - b, std::memory_order_relaxed); });
                const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
                return Napi::Number::New(info.Env(), s / static_cast<double>(reps) * 1e6);
              }));

  exports.Set("readBandwidth", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const int64_t mib = js::integer_arg(info[0], "readBandwidth", "mib", 1, 1 << 16);
                const int64_t repeats = js::integer_arg(info[1], "readBandwidth", "repeats", 1, 1000);
                return Napi::Number::New(
                    info.Env(), measure_read_bandwidth(static_cast<size_t>(mib) << 20, static_cast<int>(repeats)));
              }));
  exports.Set("gemm", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                parse_gemm(info[0], "gemm").run();
                return info.Env().Undefined();
              }));

  exports.Set("gemmAsync", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const GemmCall call = parse_gemm(info[0], "gemmAsync");
                Napi::Object o = info[0].As<Napi::Object>();
                return js::run_async(
                    info.Env(), [call] { call.run(); }, [](Napi::Env env) -> Napi::Value { return env.Undefined(); },
                    {o.Get("A"), o.Get("B"), o.Get("C")});
              }));
}

}  // namespace medix::bindings
