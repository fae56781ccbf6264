// Helpers every kernel file shares: launch checks, grid sizing, fixed-order reductions and
// stream-ordered scratch buffers.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "core/error.h"
#include "kernels.h"

namespace medix::cuda {

// Launch check after every kernel: a bad configuration fails here, naming the op, not later.
#define MEDIX_CUDA_LAUNCHED(what) ::medix::cuda::check(cudaGetLastError(), what)

// Storage types: fp32, or bf16 holding values that are computed in fp32 (round to nearest even).
using bf16 = __nv_bfloat16;
__device__ inline float to_f32(float x) { return x; }
__device__ inline float to_f32(bf16 x) { return __bfloat162float(x); }
template <typename T>
__device__ inline T from_f32(float x);
template <>
__device__ inline float from_f32<float>(float x) {
  return x;
}
template <>
__device__ inline bf16 from_f32<bf16>(float x) {
  return __float2bfloat16_rn(x);
}

// Blocks for one thread per element of n, 256 threads a block.
constexpr int kThreads = 256;
inline unsigned int blocks_for(int64_t n, int threads = kThreads) {
  return static_cast<unsigned int>((n + threads - 1) / threads);
}

// Sum and max over a warp by butterfly exchange: the same order on every run.
template <typename T>
__device__ inline T warp_sum(T x) {
  for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
  return x;
}
__device__ inline float warp_max(float x) {
  for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
  return x;
}

// Block-wide sum (blockDim.x a multiple of 32, at most 1024), returned to every thread. `shared`
// holds 32 values. Warps reduce, then warp 0 reduces the warps' sums: a fixed tree.
template <typename T>
__device__ inline T block_sum(T x, T* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  x = warp_sum(x);
  __syncthreads();  // shared may still be read by a previous call
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  T total = lane < warps ? shared[lane] : T(0);
  return warp_sum(total);
}
__device__ inline float block_max(float x, float* shared) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
  x = warp_max(x);
  __syncthreads();
  if (lane == 0) shared[warp] = x;
  __syncthreads();
  float m = lane < warps ? shared[lane] : -INFINITY;
  return warp_max(m);
}

// A device buffer from the stream-ordered pool, freed on the same stream when it goes out of scope.
// get() is 256-byte aligned, as blas_gemm requires (device_alloc checks it).
template <typename T>
class Scratch {
 public:
  Scratch(int64_t count, cudaStream_t stream, const char* what)
      : ptr_(static_cast<T*>(device_alloc(sizeof(T) * static_cast<size_t>(count), stream, what))),
        stream_(stream),
        what_(what) {}
  ~Scratch() { device_free(ptr_, stream_, what_); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* get() const { return ptr_; }

 private:
  T* ptr_ = nullptr;
  cudaStream_t stream_;
  const char* what_;
};

}  // namespace medix::cuda
