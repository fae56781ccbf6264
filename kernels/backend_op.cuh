// How a kernel file registers its host functions as the CUDA backend's ops (core/backend_op.h):
//   MEDIX_CUDA_OP(RmsnormForward, cuda::rmsnorm_forward);
// The op's arguments are passed on as the kernels take them: bf16 storage, which the op interface spells
// uint16_t (the host has no bf16 type), as __nv_bfloat16; overloads (f32 or bf16 weights) and the
// kernels' default stream argument are resolved for the op's argument types.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

#include "core/backend_op.h"

namespace medix::cuda {

template <class T>
const T& as_kernel_arg(const T& v) {
  return v;
}
inline __nv_bfloat16* as_kernel_arg(uint16_t* p) { return reinterpret_cast<__nv_bfloat16*>(p); }
inline const __nv_bfloat16* as_kernel_arg(const uint16_t* p) { return reinterpret_cast<const __nv_bfloat16*>(p); }

// The device becomes current on the calling thread first (Backend::bind_thread).
#define MEDIX_CUDA_OP(Op, fn)                                                              \
  MEDIX_BACKEND_OP("cuda", Op, static_cast<Op::Impl>([](::medix::Backend& be, auto... a) { \
                     be.bind_thread();                                                     \
                     return fn(::medix::cuda::as_kernel_arg(a)...);                        \
                   }))

}  // namespace medix::cuda
