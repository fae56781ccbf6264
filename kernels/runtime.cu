// The error check every launcher ends with.
#include "common.cuh"

namespace medix::cuda {

void check(cudaError_t err, const char* what) {
  if (err != cudaSuccess) fail(what, ": CUDA error ", cudaGetErrorName(err), ": ", cudaGetErrorString(err));
}

}  // namespace medix::cuda
