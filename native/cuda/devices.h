// How many CUDA devices the runtime sees, for the check every `device: cuda` entry point makes before
// it starts. Plain C++ (no CUDA headers): implemented in kernels/runtime.cu, so only builds with CUDA
// define it (native/bindings/system.cc calls it under MEDIX_HAVE_CUDA).
#pragma once
#include <string>

namespace medix::cuda {

// The number of devices; 0 with the runtime's reason in *why (no driver, a driver older than the
// runtime, no device) when there are none.
int device_count(std::string* why);

}  // namespace medix::cuda
