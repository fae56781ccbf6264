// The tensor-core attention kernels (attention_flash.cu), which attention.cu runs for a shape with
// bf16_operands when they fit the device. Same arguments and contract as cuda::attention_* (kernels.h);
// s.cu_seqlens is the host copy.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "ops/attention.h"

namespace medix::cuda {

constexpr int64_t kFlashMaxHeadDim = 256;

// Warps per block of each kernel for a head_dim on the current device: the most (4, 2 or 1) whose
// shared memory fits; 0 where none does (or head_dim is past kFlashMaxHeadDim).
struct FlashPlan {
  int forward = 0, dq = 0, dkv = 0;
  bool fits() const { return forward > 0 && dq > 0 && dkv > 0; }
};
FlashPlan flash_attention_plan(const AttentionShape& s);

// Both take the plan the caller checked (plan.fits()).
void flash_attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                             const int32_t* cu_seqlens_device, const AttentionShape& s, const FlashPlan& plan,
                             cudaStream_t stream);
// delta: [T, n_heads] scratch (dO . O per query row), written by the dq kernel, read by the dk/dv one.
void flash_attention_backward(float* dq, float* dk, float* dv, float* delta, const float* dout, const float* out,
                              const float* lse, const float* q, const float* k, const float* v,
                              const int32_t* cu_seqlens_device, const AttentionShape& s, const FlashPlan& plan,
                              cudaStream_t stream);

}  // namespace medix::cuda
