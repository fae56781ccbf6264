// The CUDA backend: the Backend interface (native/core/backend.h) over device memory, with the ops the
// kernel files of kernels/ register for "cuda" (kernels/backend_op.cuh). Plain C++ (no CUDA headers):
// implemented in kernels/cuda_backend.cu, so only builds with CUDA define it.
#pragma once
#include "../core/backend.h"

namespace medix::cuda {

// The process's backend (one instance), on device local_rank mod the device count (one process per
// GPU); any thread may call it (a model's calls all run on its BackendThread, which makes the device
// current once when it starts). Throws on first use when there is no device. Ops run on the default
// stream in call order; to_host and synchronize wait for them. The sampler runs its CPU reference on host
// copies (logits to the host, tokens back: the CPU's tokens bit for bit) unless MEDIX_CUDA_SAMPLER=gpu
// picks kernels/sampling.cu.
Backend& backend();

}  // namespace medix::cuda
