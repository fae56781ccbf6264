// The portable GEMM's register kernels, one per vector width, and the blocked loop they run in.
// gemm.cc picks one at run time (the widest this CPU has, unless set_gemm_micro_kernel says otherwise)
// and splits C between threads in whole register tiles of that kernel.
//
// Every kernel computes each C element as the same sequence of operations: per K slice (cut by
// gemm_k_slice, which depends on K alone) one fused multiply-add chain in k order, then
// gemm_update_tile's explicit rounding (gemm_fold_tile's, the same operations, for full tiles). So
// all kernels give the same bits, whatever the tile shape, the block sizes, the thread split or the
// thread count.
#pragma once
#include <cstdint>

namespace medix {

struct GemmOperand {
  const float* data;
  int64_t ld;
  bool trans;
};

struct MicroKernel {
  const char* name;  // "avx2", "avx512", or "generic" off x86-64
  int64_t mr, nr;    // register tile
  int64_t mc, nc;    // row block (A block in L2) and column panel (B panel in L3), from the cache sizes
  // C[i0:i1, j0:j1] on the calling thread, over the whole K range.
  void (*block)(const MicroKernel& k, const GemmOperand& a, const GemmOperand& b, int64_t i0, int64_t i1, int64_t j0,
                int64_t j1, int64_t K, float alpha, float beta, float* C, int64_t ldc);
  // The two halves of one column panel and K slice, so that threads can share one packed op(B):
  // pack_b packs op(B)[p0:p0+kc, j0:j0+nc] into nr-wide micro-panels (j0 - panel start a multiple of nr
  // when packing part of a panel, at dst + (j0 - panel start) * kc); rows computes C[i0:i1, jc:jc+nc].
  void (*pack_b)(const GemmOperand& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* dst);
  void (*rows)(const MicroKernel& k, const GemmOperand& a, const float* packed_b, int64_t i0, int64_t i1, int64_t jc,
               int64_t nc, int64_t pc, int64_t kc, float alpha, float beta, float* C, int64_t ldc);
};

// Deepest K slice: a KC x NR micro-panel of B and the MR x KC ones of A stream through L1/L2.
constexpr int64_t kGemmMaxKc = 512;

// K cut into equal-as-possible slices of at most kGemmMaxKc; depends on K alone.
inline int64_t gemm_k_slice(int64_t K) {
  const int64_t slices = (K + kGemmMaxKc - 1) / kGemmMaxKc;
  return (K + slices - 1) / slices;
}

// Folds an m x n tile of accumulators (row stride `ts`) into C: C = alpha*acc (beta == 0; C is not
// read) or fma(alpha, acc, beta*C) on the first K slice, C = fma(alpha, acc, C) on later ones.
// Explicit fma calls, one compiled copy: the same rounding for every kernel and tile position. Full
// tiles are folded by the register kernel itself (gemm_fold_tile), with the same operations.
void gemm_update_tile(const float* acc, int64_t ts, float* C, int64_t ldc, int64_t m, int64_t n, float alpha,
                      float beta, bool first);

// Where a register kernel puts its MR x NR tile: folded into C (row stride ldc) by gemm_update_tile's
// rule. A partial edge tile goes to a temporary as plain accumulators ({tile, NR, 1, 0, true}: 1*acc
// is exact), which gemm_update_tile then folds into the part of C that exists.
struct TileOut {
  float* c;
  int64_t ldc;
  float alpha, beta;
  bool first;
};

// Row block and column panel for a kernel with an mr x nr tile, from this CPU's cache sizes.
void gemm_blocking(int64_t mr, int64_t nr, int64_t* mc, int64_t* nc);

const MicroKernel& base_micro_kernel();    // the build's own vector width (AVX2+FMA on x86-64)
const MicroKernel* avx512_micro_kernel();  // nullptr when not compiled in or the CPU lacks AVX-512
// The one the portable gemm runs on now (the widest, unless set_gemm_micro_kernel chose another).
const MicroKernel& selected_micro_kernel();

}  // namespace medix
