// The tensor-core attention kernels (attention_flash.cu), which attention.cu runs for a shape with
// bf16_operands when they fit the device. Same arguments and contract as cuda::attention_* (kernels.h);
// s.cu_seqlens is the host copy.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention.h"

namespace medix::cuda {

constexpr int64_t kFlashMaxHeadDim = 256;

// Whether this head_dim's kernels fit the current device's shared memory (each takes 4, 2 or 1 warps).
bool flash_attention_fits(const AttentionShape& s);

void flash_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                             const int32_t* cu_seqlens_device, const AttentionShape& s, cudaStream_t stream);
// delta: [T, n_heads] scratch (dO . O per query row), written by the dq kernel, read by the dk/dv one.
void flash_attention_backward(float* dq, float* dk, float* dv, float* delta, const float* dout, const float* out,
                              const float* lse, const float* q, const float* k, const float* v,
                              const int32_t* cu_seqlens_device, const AttentionShape& s, cudaStream_t stream);

}  // namespace medix::cuda
