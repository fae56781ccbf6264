// GPU benchmark of medix's fused log-probs + entropy (kernels.h: logprob_forward_blas and
// logprob_backward_blas) over a Qwen3 vocabulary (151,936) with bf16 hidden states and head: time
// (CUDA events, after a warm-up) and peak device memory, forward and forward+backward, at each T x
// hidden. scripts/device/torch_logprob_bench.py measures PyTorch eager on the same shapes and
// scripts/device/merge_gpu_bench.py turns both into bench records (issue 14).
//
// Peak memory: what the op holds beyond its inputs (hidden, head, targets, dlogp/dentropy): the
// stream-ordered pool's high-water mark (every scratch buffer comes from it), the outputs (logp,
// entropy, lse and, with backward, the fp32 dhidden and dhead) and cuBLASLt's fixed workspace.
//
//   gpu_logprob_bench [--T 4096,16384] [--hidden 2048,4096] [--vocab 151936] [--vocab-chunk 4096] [--reps 3]
// Prints progress on stderr and one JSON line on stdout. Exits 2 without a usable CUDA device and 3
// without cuBLASLt, saying which and why.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "cuda/libraries.h"
#include "kernels/kernels.h"

namespace {

using medix::LogprobShape;

void ok(cudaError_t err, const char* what) {
  if (err != cudaSuccess) {
    std::fprintf(stderr, "gpu_logprob_bench: %s: %s\n", what, cudaGetErrorString(err));
    std::exit(1);
  }
}

// Deterministic pseudo-random inputs made on the device (a hash of the index), uniform in [lo, hi).
__device__ float hash_uniform(uint64_t i, uint32_t seed) {
  uint64_t x = i * 0x9E3779B97F4A7C15ull + seed;
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  x ^= x >> 29;
  return static_cast<float>(x >> 40) * 0x1p-24f;
}
__global__ void fill_bf16(__nv_bfloat16* p, int64_t n, float lo, float hi, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = __float2bfloat16_rn(lo + (hi - lo) * hash_uniform(i, seed));
}
__global__ void fill_f32(float* p, int64_t n, float lo, float hi, uint32_t seed) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = lo + (hi - lo) * hash_uniform(i, seed);
}
__global__ void fill_targets(int32_t* p, int64_t n, int64_t vocab) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    p[i] = static_cast<int32_t>(hash_uniform(i, 7) * static_cast<float>(vocab)) % static_cast<int32_t>(vocab);
}

template <typename T>
T* device_alloc(int64_t n, const char* what) {
  T* p = nullptr;
  ok(cudaMalloc(reinterpret_cast<void**>(&p), sizeof(T) * static_cast<size_t>(n)), what);
  return p;
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) out.push_back(std::stoll(item));
  return out;
}

struct Result {
  int64_t T, hidden;
  bool backward;
  double ms;
  size_t peak_bytes;
};

constexpr size_t kCublasLtWorkspace = size_t{32} << 20;  // kernels/cublaslt.cu's fixed workspace

Result run_shape(int64_t T, int64_t hidden, int64_t vocab, int64_t vocab_chunk, int reps, bool backward) {
  LogprobShape s;
  s.T = T;
  s.hidden = hidden;
  s.vocab = vocab;
  s.vocab_chunk = vocab_chunk;
  auto* h = device_alloc<__nv_bfloat16>(T * hidden, "hidden");
  auto* head = device_alloc<__nv_bfloat16>(vocab * hidden, "head");
  auto* targets = device_alloc<int32_t>(T, "targets");
  auto* dlogp = device_alloc<float>(T, "dlogp");
  auto* dent = device_alloc<float>(T, "dentropy");
  const float range = 2.6f / std::sqrt(static_cast<float>(hidden));  // logits' spread ~1.5
  fill_bf16<<<1024, 256>>>(h, T * hidden, -1.0f, 1.0f, 1);
  fill_bf16<<<1024, 256>>>(head, vocab * hidden, -range, range, 2);
  fill_targets<<<64, 256>>>(targets, T, vocab);
  fill_f32<<<64, 256>>>(dlogp, T, -1.0f, 1.0f, 3);
  fill_f32<<<64, 256>>>(dent, T, -1.0f, 1.0f, 4);
  ok(cudaGetLastError(), "input fill");

  // The outputs count towards the peak: allocate them the way the op's caller would.
  const size_t out_bytes = sizeof(float) * static_cast<size_t>(3 * T + (backward ? T * hidden + vocab * hidden : 0));
  auto* logp = device_alloc<float>(T, "logp");
  auto* ent = device_alloc<float>(T, "entropy");
  auto* lse = device_alloc<float>(T, "lse");
  float* dh = backward ? device_alloc<float>(T * hidden, "dhidden") : nullptr;
  float* dhead = backward ? device_alloc<float>(vocab * hidden, "dhead") : nullptr;

  cudaMemPool_t pool;
  ok(cudaDeviceGetDefaultMemPool(&pool, 0), "cudaDeviceGetDefaultMemPool");
  cudaEvent_t begin, end;
  ok(cudaEventCreate(&begin), "cudaEventCreate");
  ok(cudaEventCreate(&end), "cudaEventCreate");
  auto once = [&] {
    medix::cuda::logprob_forward_blas(logp, ent, lse, h, head, targets, s);
    if (backward) medix::cuda::logprob_backward_blas(dh, dhead, dlogp, dent, h, head, targets, lse, ent, s);
  };
  once();  // warm-up: cuBLASLt plans, the pool's first allocations
  ok(cudaDeviceSynchronize(), "warm-up");
  uint64_t zero = 0;
  ok(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &zero), "reset the pool's high-water mark");
  ok(cudaEventRecord(begin), "cudaEventRecord");
  for (int r = 0; r < reps; ++r) once();
  ok(cudaEventRecord(end), "cudaEventRecord");
  ok(cudaEventSynchronize(end), "the benchmarked calls");
  float ms = 0;
  ok(cudaEventElapsedTime(&ms, begin, end), "cudaEventElapsedTime");
  uint64_t pool_high = 0;
  ok(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemHigh, &pool_high), "the pool's high-water mark");

  for (void* p : {static_cast<void*>(h), static_cast<void*>(head), static_cast<void*>(targets),
                  static_cast<void*>(dlogp), static_cast<void*>(dent), static_cast<void*>(logp),
                  static_cast<void*>(ent), static_cast<void*>(lse), static_cast<void*>(dh), static_cast<void*>(dhead)})
    if (p) ok(cudaFree(p), "cudaFree");
  cudaEventDestroy(begin);
  cudaEventDestroy(end);
  return {T, hidden, backward, ms / reps, static_cast<size_t>(pool_high) + out_bytes + kCublasLtWorkspace};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> Ts{4096, 16384}, hiddens{2048, 4096};
  int64_t vocab = 151936, vocab_chunk = 4096;
  int reps = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    if (a == "--T" && v)
      Ts = parse_list(argv[++i]);
    else if (a == "--hidden" && v)
      hiddens = parse_list(argv[++i]);
    else if (a == "--vocab" && v)
      vocab = std::stoll(argv[++i]);
    else if (a == "--vocab-chunk" && v)
      vocab_chunk = std::stoll(argv[++i]);
    else if (a == "--reps" && v)
      reps = std::max(1, std::atoi(argv[++i]));
    else {
      std::fprintf(stderr,
                   "gpu_logprob_bench: unknown argument '%s' (use --T, --hidden, --vocab, --vocab-chunk, "
                   "--reps)\n",
                   a.c_str());
      return 64;
    }
  }
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess || count == 0) {
    std::fprintf(stderr, "gpu_logprob_bench: NO CUDA DEVICE (%s): nothing to benchmark\n",
                 err != cudaSuccess ? cudaGetErrorString(err) : "no CUDA device");
    return 2;
  }
  try {
    medix::cuda::load(medix::cuda::Library::CublasLt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_logprob_bench: %s\n", e.what());
    return 3;
  }
  cudaDeviceProp prop{};
  ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
  std::ostringstream json;
  json << "{\"bench\":\"gpu_logprob\",\"device\":\"" << prop.name << "\",\"vocab\":" << vocab
       << ",\"vocab_chunk\":" << vocab_chunk << ",\"reps\":" << reps << ",\"results\":[";
  bool first = true;
  for (int64_t T : Ts)
    for (int64_t hidden : hiddens)
      for (bool backward : {false, true}) {
        try {
          const Result r = run_shape(T, hidden, vocab, vocab_chunk, reps, backward);
          std::fprintf(stderr, "gpu_logprob_bench: T=%lld hidden=%lld %s: %.3f ms, peak %.1f MiB\n",
                       static_cast<long long>(T), static_cast<long long>(hidden),
                       backward ? "forward+backward" : "forward", r.ms, r.peak_bytes / 1048576.0);
          json << (first ? "" : ",") << "{\"T\":" << T << ",\"hidden\":" << hidden << ",\"mode\":\""
               << (backward ? "forward_backward" : "forward") << "\",\"ms\":" << r.ms
               << ",\"peak_bytes\":" << r.peak_bytes << "}";
          first = false;
        } catch (const std::exception& e) {
          std::fprintf(stderr, "gpu_logprob_bench: T=%lld hidden=%lld: %s\n", static_cast<long long>(T),
                       static_cast<long long>(hidden), e.what());
          return 1;
        }
      }
  json << "]}";
  std::printf("%s\n", json.str().c_str());
  return 0;
}
