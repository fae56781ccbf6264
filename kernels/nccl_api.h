// Our own declarations of the part of NCCL's C API that kernels/nccl_communicator.cu calls: opaque
// handles, the enum values it passes, the unique id's size and the function types. libnccl is opened
// at run time (native/cuda/libraries.h), so no NCCL header or SDK is needed to build. Values are those
// of NCCL 2's public, stable ABI.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace medix::cuda::nccl {

using Result = int;  // ncclResult_t; 0 is success
constexpr Result kSuccess = 0;

struct CommOpaque;
using Comm = CommOpaque*;
struct UniqueId {
  char internal[128];  // NCCL_UNIQUE_ID_BYTES
};

// ncclDataType_t
constexpr int kUint8 = 1, kInt32 = 2, kFloat32 = 7, kFloat64 = 8, kBfloat16 = 9;
// ncclRedOp_t
constexpr int kSum = 0;

using GetVersionFn = Result (*)(int*);
using GetUniqueIdFn = Result (*)(UniqueId*);
using CommInitRankFn = Result (*)(Comm*, int nranks, UniqueId id, int rank);
using CommDestroyFn = Result (*)(Comm);
using GetErrorStringFn = const char* (*)(Result);
using AllReduceFn = Result (*)(const void* send, void* recv, size_t count, int dtype, int op, Comm, cudaStream_t);
using ReduceFn = Result (*)(const void* send, void* recv, size_t count, int dtype, int op, int root, Comm,
                            cudaStream_t);
using BroadcastFn = Result (*)(const void* send, void* recv, size_t count, int dtype, int root, Comm, cudaStream_t);
using AllGatherFn = Result (*)(const void* send, void* recv, size_t send_count, int dtype, Comm, cudaStream_t);
using ReduceScatterFn = Result (*)(const void* send, void* recv, size_t recv_count, int dtype, int op, Comm,
                                   cudaStream_t);

}  // namespace medix::cuda::nccl
