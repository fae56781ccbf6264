// The error check every launcher ends with, and the device count (native/cuda/devices.h).
#include <cstdint>
#include <cstdio>
#include <string>

#include "cuda/devices.h"
#include "common.cuh"

namespace medix::cuda {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail(what, ": CUDA error ", cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

[[noreturn]] void out_of_memory(size_t bytes, const char* what) {
  cudaGetLastError();  // clear it: the queries below must not report it
  int device = -1;
  cudaGetDevice(&device);
  size_t free = 0, total = 0;
  cudaMemGetInfo(&free, &total);
  // The default pool keeps freed memory for reuse (kernels/cuda_backend.cu), so it can hold much more
  // than is in use.
  cudaMemPool_t pool = nullptr;
  uint64_t reserved = 0, used = 0;
  if (cudaDeviceGetDefaultMemPool(&pool, device) == cudaSuccess) {
    cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved);
    cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used);
  }
  const auto mib = [](uint64_t b) { return std::to_string((b + (1 << 20) - 1) >> 20) + " MiB"; };
  fail(what, ": out of memory on device ", device, " allocating ", mib(bytes), ": ", mib(free), " free of ", mib(total),
       "; medix's pool holds ", mib(reserved), " (", mib(used),
       " in use). Smaller micro batches (worker.actor.micro_batch_size_per_device_for_update, "
       "..._for_experience), worker.actor.model.enable_gradient_checkpointing, dtype bf16 or "
       "worker.actor.fsdp.enable_full_shard lower what a step needs");
}

// The pool keeps its peak (release threshold at max, cuda_backend.cu), which starves what is allocated
// outside it: the cuBLASLt workspace (cudaMalloc below) and buffers that wait for frees still queued on
// another stream. Before giving up, as PyTorch's caching allocator does when it empties its cache:
// wait for every queued free, hand the pool's unused memory back to the driver, and try once more.
// A failed synchronisation is an earlier kernel's fault (an illegal address, say): it is reported as
// itself, not as running out of memory.
void trim_pool(const char* what) {
  cudaGetLastError();  // the failed allocation's error: the calls below must not report it
  check(cudaDeviceSynchronize(), what);
  int device = -1;
  cudaMemPool_t pool = nullptr;
  check(cudaGetDevice(&device), what);
  check(cudaDeviceGetDefaultMemPool(&pool, device), what);
  check(cudaMemPoolTrimTo(pool, 0), what);
}

void* device_alloc(size_t bytes, cudaStream_t stream, const char* what, bool pooled) {
  void* p = nullptr;
  const size_t n = bytes ? bytes : 1;
  const auto allocate = [&] { return pooled ? cudaMallocAsync(&p, n, stream) : cudaMalloc(&p, n); };
  cudaError_t err = allocate();
  if (err == cudaErrorMemoryAllocation) {
    trim_pool(what);
    err = allocate();
  }
  if (err == cudaErrorMemoryAllocation) out_of_memory(n, what);
  check(err, what);
  // The programming guide promises 256 bytes for every allocation routine; the linear layers' choice of
  // cuBLASLt (and so their bits) depends on it, so a pool that gave less would fail here, not vary.
  if (reinterpret_cast<uintptr_t>(p) % 256 != 0) {
    pooled ? cudaFreeAsync(p, stream) : cudaFree(p);
    fail(what, ": the CUDA allocator returned ", p, ", not 256-byte aligned");
  }
  return p;
}

void device_free(void* p, cudaStream_t stream, const char* what) {
  if (!p) return;
  const cudaError_t err = cudaFreeAsync(p, stream);
  if (err == cudaSuccess) return;
  cudaGetLastError();
  std::fprintf(stderr, "medix: %s: cudaFreeAsync failed (%s); the memory is lost\n", what, cudaGetErrorString(err));
}

int device_count(std::string* why) {
  int n = 0;
  const cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    *why = cudaGetErrorString(err);
    cudaGetLastError();  // clear it: the next CUDA call must not report this one
    return 0;
  }
  if (n == 0) *why = "the CUDA runtime found no device";
  return n;
}

}  // namespace medix::cuda
