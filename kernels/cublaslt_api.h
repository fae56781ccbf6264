// Our own declarations of the part of cuBLASLt's C API that kernels/cublaslt.cu calls: the opaque
// handle types, the enum values it passes, the heuristic result's layout and the function types. The
// library is opened at run time (native/cuda/libraries.h), so no cuBLAS header or SDK is needed to
// build. Values are those of the public cuBLASLt 12/13 ABI (stable across those versions).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace medix::cuda::lt {

using Status = int;  // cublasStatus_t; 0 is success
constexpr Status kSuccess = 0;

struct Context;  // cublasLtContext
struct MatmulDescOpaque;
struct MatrixLayoutOpaque;
struct PreferenceOpaque;
using Handle = Context*;
using MatmulDesc = MatmulDescOpaque*;
using MatrixLayout = MatrixLayoutOpaque*;
using Preference = PreferenceOpaque*;

// cudaDataType_t
constexpr int kR32F = 0;
constexpr int kR16BF = 14;
// cublasComputeType_t: fp32 accumulation, no TF32 down-conversion of fp32 inputs.
constexpr int kCompute32F = 68;
// cublasOperation_t
constexpr int32_t kOpN = 0, kOpT = 1;
// cublasLtMatmulDescAttributes_t
constexpr int kDescTransA = 3, kDescTransB = 4;
// cublasLtMatmulPreferenceAttributes_t
constexpr int kPrefMaxWorkspaceBytes = 1;

struct MatmulAlgo {
  uint64_t data[8];
};
struct HeuristicResult {
  MatmulAlgo algo;
  size_t workspace_size;
  Status state;
  float waves_count;
  int reserved[4];
};

using CreateFn = Status (*)(Handle*);
using MatmulDescCreateFn = Status (*)(MatmulDesc*, int compute_type, int scale_type);
using MatmulDescSetAttributeFn = Status (*)(MatmulDesc, int attr, const void* buf, size_t size);
using MatrixLayoutCreateFn = Status (*)(MatrixLayout*, int type, uint64_t rows, uint64_t cols, int64_t ld);
using PreferenceCreateFn = Status (*)(Preference*);
using MatmulDescDestroyFn = Status (*)(MatmulDesc);
using MatrixLayoutDestroyFn = Status (*)(MatrixLayout);
using PreferenceDestroyFn = Status (*)(Preference);
using PreferenceSetAttributeFn = Status (*)(Preference, int attr, const void* buf, size_t size);
using AlgoGetHeuristicFn = Status (*)(Handle, MatmulDesc, MatrixLayout a, MatrixLayout b, MatrixLayout c,
                                      MatrixLayout d, Preference, int requested, HeuristicResult* results,
                                      int* returned);
using MatmulFn = Status (*)(Handle, MatmulDesc, const void* alpha, const void* A, MatrixLayout a, const void* B,
                            MatrixLayout b, const void* beta, const void* C, MatrixLayout c, void* D, MatrixLayout d,
                            const MatmulAlgo* algo, void* workspace, size_t workspace_size, cudaStream_t stream);

}  // namespace medix::cuda::lt
