// Products of a few rows with a weight matrix in Hugging Face layout, the shape of decoding:
//
//   y[M, N] = x[M, K] * W[N, K]^T       (W is [out, in]: each output is a dot product of two
//                                        K-contiguous rows)
//
// At a few rows this is a stream over W, not a matrix product: a GEMM kernel packs W (a full
// extra read and write of it) to feed a register tile that a handful of rows cannot fill. This
// kernel reads W once, in place, each thread owning a contiguous range of its rows, and keeps x in
// cache.
//
// Every y[m][n] is computed by the same sequence of operations whatever M, m, n, the tile it falls
// in, or the thread count: 8-lane partial sums over k in order (one fused multiply-add chain per
// lane), a fixed pairwise sum of the lanes, then the K % 8 tail terms in order. So a row's result
// does not depend on the other rows of the batch: a decoded sequence gets the same bits alone or
// batched (up to kGemvMaxRows rows, where linear_forward switches to gemm).
#pragma once
#include <cstdint>

namespace medix {

// linear_forward uses gemv_nt up to this many rows and gemm above (measured in bench/generate:
// at 128 rows this kernel still beats a packing GEMM that reads a large W twice).
constexpr int64_t kGemvMaxRows = 128;

// Multi-threaded. ldx, ldw, ldy: row strides of x, W and y (>= K, K, N).
void gemv_nt(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const float* W, int64_t ldw, float* y,
             int64_t ldy);
// The same with bf16 weights (bf16.h), widened to f32 as they are read: the bits of gemv_nt on the
// widened W, for half the bytes of W.
void gemv_nt_bf16(int64_t M, int64_t N, int64_t K, const float* x, int64_t ldx, const uint16_t* W, int64_t ldw,
                  float* y, int64_t ldy);

}  // namespace medix
