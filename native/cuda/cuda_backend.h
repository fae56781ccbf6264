// The CUDA backend: the Backend interface (native/core/backend.h) over device memory and the kernels
// of kernels/. Plain C++ (no CUDA headers): implemented in kernels/cuda_backend.cu, so only builds with
// CUDA define it.
#pragma once
#include "../core/backend.h"

namespace medix::cuda {

// The backend of the calling thread's current device (one instance per process). Ops run on the
// default stream in call order; to_host waits for them. Ops without a kernel yet either run their CPU
// reference on host copies (the sampler: logits to the host, tokens back, so sampling is the CPU's bit
// for bit) or throw naming the op (mixture of experts).
Backend& backend();

}  // namespace medix::cuda
