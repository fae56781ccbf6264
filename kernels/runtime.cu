// The error check every launcher ends with, and the device count (native/cuda/devices.h).
#include <string>

#include "cuda/devices.h"
#include "common.cuh"

namespace medix::cuda {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail(what, ": CUDA error ", cudaGetErrorName(err), ": ", cudaGetErrorString(err));
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
