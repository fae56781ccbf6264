// The CUDA backend (native/cuda/cuda_backend.h): device memory from the stream-ordered pool, and the ops
// the kernel files of this folder register for "cuda" (backend_op.cuh), in call order on the default
// stream.
#include <cstdint>

#include "common.cuh"
#include "cuda/cuda_backend.h"
#include "dist/communicator.h"

namespace medix::cuda {
namespace {

class CudaBackend final : public Backend {
 public:
  // One process per GPU: local rank r of the run uses device r mod the device count, as the NCCL
  // communicator does (native/cuda/nccl.h).
  CudaBackend() : Backend(registered_ops("cuda")) {
    int count = 0;
    check(cudaGetDeviceCount(&count), "cuda backend: cudaGetDeviceCount");
    if (count == 0) fail("cuda backend: no CUDA device");
    device_ = world().local_rank() % count;
    // The device's default pool (alloc and release below, and every kernel's Scratch) keeps what is
    // freed for the next allocation instead of returning it to the driver at each synchronisation;
    // device_alloc (runtime.cu) trims it when an allocation would otherwise fail.
    cudaMemPool_t pool = nullptr;
    check(cudaDeviceGetDefaultMemPool(&pool, device_), "cuda backend: cudaDeviceGetDefaultMemPool");
    uint64_t keep = UINT64_MAX;
    check(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), "cuda backend: memory pool");
  }

  const char* name() const override { return "cuda"; }

  // The device becomes current on the calling thread: once on the thread that owns this backend's work
  // (a model's BackendThread), and at every op (backend_op.cuh) and memory call, for callers on other
  // threads (runOp, the programs).
  void bind_thread() override { bind(); }

  void synchronize() override {
    bind();
    check(cudaDeviceSynchronize(), "cuda backend: synchronize");
  }

  // Stream-ordered on the default stream, where every op runs: the vision tower and per-call buffers
  // allocate and free each step, and cudaFree would synchronise the whole device every time. The
  // NCCL communicator's stream waits for the default stream before a collective and is synchronised
  // after it, so nothing still reads a buffer its release hands back to the pool.
  void* alloc(size_t bytes) override {
    bind();
    void* p = device_alloc(bytes, 0, "cuda backend alloc");
    check(cudaMemsetAsync(p, 0, bytes, 0), "cuda backend alloc (zero fill)");
    return p;
  }
  // Without alloc's fill: the pass over the memory it saves is the point (backend.h).
  void* alloc_uninit(size_t bytes) override {
    bind();
    return device_alloc(bytes, 0, "cuda backend alloc");
  }
  void release(void* p) override {
    bind();
    device_free(p, 0, "cuda backend release");
  }
  void to_host(void* dst, const void* src, size_t bytes) override {
    bind();
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost), "cuda backend to_host");
  }
  void from_host(void* dst, const void* src, size_t bytes) override {
    bind();
    check(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice), "cuda backend from_host");
  }
  void zero_bytes(void* p, size_t bytes) override {
    bind();
    check(cudaMemsetAsync(p, 0, bytes), "cuda backend zero");
  }
  void copy_bytes(void* dst, const void* src, size_t bytes) override {
    bind();
    check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice), "cuda backend copy");
  }
  std::unique_ptr<Reservation> reserve(int64_t bytes) override {
    bind();
    return reserve_device(bytes, device_);
  }

 private:
  // The runtime's current device is per host thread, and the addon calls the backend from libuv's
  // worker threads: every call first makes this process's device current on its thread (once per
  // thread; the primary context itself is shared by the process's threads).
  void bind() const {
    thread_local int bound = -1;
    if (bound != device_) {
      check(cudaSetDevice(device_), "cuda backend: cudaSetDevice");
      bound = device_;
    }
  }

  int device_ = 0;
};

}  // namespace

Backend& backend() {
  static CudaBackend instance;
  return instance;
}

}  // namespace medix::cuda
