// Packing and the blocked loop of the portable GEMM, generic over the register kernel (included by
// each kernel's file, which may compile it for a wider instruction set). The classic Goto/BLIS scheme:
//   for each nc-wide column panel of C:
//     for each K slice (in order):
//       pack the kc x nc slice of op(B) into NR-wide micro-panels      (stays in L3)
//       for each mc-tall row block:
//         pack the mc x kc block of op(A) into MR-tall micro-panels     (stays in L2)
//         for every MR x NR tile: register kernel over the K slice, folding its tile into C
// Packing turns all four transpose combinations into one layout and pads edges with zeros, so the
// register kernel always computes a full tile; at the edges it goes through a temporary, and
// gemm_update_tile writes only the m x n part that exists.
//
// In an anonymous namespace on purpose: each including file compiles its own copy for its own target,
// and no copy may be merged by the linker with one built for another instruction set.
#pragma once
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "error.h"
#include "gemm_micro.h"

namespace medix {
namespace {

// Rows [i0, i0+mc) x K-slice [p0, p0+kc) of op(A) into micro-panels of MR rows: panel p holds
// dst[p*kc*MR + k*MR + r] = op(A)[i0 + p*MR + r][p0 + k], rows past mc are zero.
template <int64_t MR>
void pack_a(const GemmOperand& a, int64_t i0, int64_t mc, int64_t p0, int64_t kc, float* dst) {
  for (int64_t ir = 0; ir < mc; ir += MR, dst += kc * MR) {
    const int64_t m = std::min(MR, mc - ir);
    if (a.trans && m == MR) {  // op(A)[i][k] = A[k][i]: each k contributes MR contiguous values
      const float* src = a.data + p0 * a.ld + i0 + ir;
      for (int64_t k = 0; k < kc; ++k)  // a fixed-size copy, as in pack_b
#pragma GCC unroll 16
        for (int64_t r = 0; r < MR; ++r) dst[k * MR + r] = src[k * a.ld + r];
    } else if (a.trans) {  // the last, partial panel
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = a.data + (p0 + k) * a.ld + i0 + ir;
        float* d = dst + k * MR;
        for (int64_t r = 0; r < m; ++r) d[r] = src[r];
        for (int64_t r = m; r < MR; ++r) d[r] = 0.0f;
      }
    } else if (m == MR) {  // op(A)[i][k] = A[i][k]: MR rows side by side, the panel written in order
      const float* src = a.data + (i0 + ir) * a.ld + p0;
      for (int64_t k = 0; k < kc; ++k)
#pragma GCC unroll 16
        for (int64_t r = 0; r < MR; ++r) dst[k * MR + r] = src[r * a.ld + k];
    } else {  // the last, partial panel: walk each row contiguously
      for (int64_t r = 0; r < m; ++r) {
        const float* src = a.data + (i0 + ir + r) * a.ld + p0;
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = src[k];
      }
      for (int64_t r = m; r < MR; ++r)
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = 0.0f;
    }
  }
}

// K-slice [p0, p0+kc) x columns [j0, j0+nc) of op(B) into micro-panels of NR columns: panel q holds
// dst[q*kc*NR + k*NR + c] = op(B)[p0 + k][j0 + q*NR + c], columns past nc are zero.
template <int64_t NR>
void pack_b(const GemmOperand& b, int64_t p0, int64_t kc, int64_t j0, int64_t nc, float* dst) {
  for (int64_t jr = 0; jr < nc; jr += NR, dst += kc * NR) {
    const int64_t n = std::min(NR, nc - jr);
    if (b.trans) {  // op(B)[k][j] = B[j][k]: walk each stored row contiguously
      for (int64_t c = 0; c < n; ++c) {
        const float* src = b.data + (j0 + jr + c) * b.ld + p0;
        for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = src[k];
      }
      for (int64_t c = n; c < NR; ++c)
        for (int64_t k = 0; k < kc; ++k) dst[k * NR + c] = 0.0f;
    } else if (n == NR) {  // op(B)[k][j] = B[k][j]: each k contributes NR contiguous values
      const float* src = b.data + p0 * b.ld + j0 + jr;
      for (int64_t k = 0; k < kc; ++k)  // a fixed-size copy: vector moves, no memcpy call per row
#pragma GCC unroll 32
        for (int64_t c = 0; c < NR; ++c) dst[k * NR + c] = src[k * b.ld + c];
    } else {  // the last, partial panel
      for (int64_t k = 0; k < kc; ++k) {
        const float* src = b.data + (p0 + k) * b.ld + j0 + jr;
        float* d = dst + k * NR;
        std::memcpy(d, src, n * sizeof(float));
        std::fill(d + n, d + NR, 0.0f);
      }
    }
  }
}

// Folds a register tile of accumulators (MR rows of NV vectors V, GCC vector types) into out.c with
// gemm_update_tile's rule and roundings, straight from the registers; fma is the kernel's own
// vector fused multiply-add (a template argument, so that it is inlined). C may be unaligned (memcpy:
// unaligned vector loads and stores).
template <auto fma, int64_t MR, int NV, class V>
inline void gemm_fold_tile(const V (&acc)[MR][NV], const TileOut& out) {
  constexpr int W = sizeof(V) / sizeof(float);
  const V alpha = out.alpha - V{}, beta = out.beta - V{};  // splats (x - 0.0f is x, -0.0f too)
  const auto fold = [&](auto rule) {
#pragma GCC unroll 16
    for (int64_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        float* c = out.c + r * out.ldc + v * W;
        V x;
        __builtin_memcpy(&x, c, sizeof(V));
        x = rule(acc[r][v], x);
        __builtin_memcpy(c, &x, sizeof(V));
      }
  };
  if (!out.first)
    fold([&](V a, V c) { return fma(alpha, a, c); });
  else if (out.beta == 0.0f)  // C is not read: NaN there must not survive
#pragma GCC unroll 16
    for (int64_t r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) {
        const V x = alpha * acc[r][v];
        __builtin_memcpy(out.c + r * out.ldc + v * W, &x, sizeof(V));
      }
  else
    fold([&](V a, V c) { return fma(alpha, a, beta * c); });
}

// Brings the MR rows of NR floats at c into L1 (for writing) while the K loop runs.
template <int64_t MR, int64_t NR>
inline void gemm_prefetch_tile(const TileOut& out) {
#pragma GCC unroll 16
  for (int64_t r = 0; r < MR; ++r) {
    __builtin_prefetch(out.c + r * out.ldc, 1);
    __builtin_prefetch(out.c + r * out.ldc + NR - 1, 1);
  }
}

struct FreeAligned {
  void operator()(float* p) const { std::free(p); }
};

// A 64-byte aligned buffer grown on demand; one pair per thread and kernel, so gemm_serial is safe
// inside parallel_for.
class PackBuffer {
 public:
  float* get(int64_t floats) {
    if (floats > capacity_) {
      const size_t bytes = (static_cast<size_t>(floats) * sizeof(float) + 63) / 64 * 64;
      float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!p) fail("gemm: cannot allocate a ", bytes, "-byte pack buffer");
      data_.reset(p);
      capacity_ = floats;
    }
    return data_.get();
  }

 private:
  std::unique_ptr<float, FreeAligned> data_;
  int64_t capacity_ = 0;
};

int64_t round_up(int64_t x, int64_t to) { return (x + to - 1) / to * to; }

// Rows [i0, i1) of C's column panel [jc, jc+nc) for the K slice [pc, pc+kc), with that slice of op(B)
// already packed in bbuf: packs op(A) block by block and runs the register kernel Micro (Micro::MR,
// Micro::NR, Micro::run(kc, A micro-panel, B micro-panel, TileOut)) on every tile.
template <class Micro>
void gemm_rows(const MicroKernel& kern, const GemmOperand& a, const float* bbuf, int64_t i0, int64_t i1, int64_t jc,
               int64_t nc, int64_t pc, int64_t kc, float alpha, float beta, float* C, int64_t ldc) {
  constexpr int64_t MR = Micro::MR, NR = Micro::NR;
  static thread_local PackBuffer packed_a;
  float* abuf = packed_a.get(kc * std::min(kern.mc, round_up(i1 - i0, MR)));
  alignas(64) float tile[MR * NR];
  for (int64_t ic = i0; ic < i1; ic += kern.mc) {
    const int64_t mc = std::min(kern.mc, i1 - ic);
    pack_a<MR>(a, ic, mc, pc, kc, abuf);
    for (int64_t jr = 0; jr < nc; jr += NR)
      for (int64_t ir = 0; ir < mc; ir += MR) {
        const int64_t m = std::min(MR, mc - ir), n = std::min(NR, nc - jr);
        float* c = C + (ic + ir) * ldc + jc + jr;
        if (m == MR && n == NR) {
          Micro::run(kc, abuf + ir * kc, bbuf + jr * kc, {c, ldc, alpha, beta, pc == 0});
        } else {
          Micro::run(kc, abuf + ir * kc, bbuf + jr * kc, {tile, NR, 1.0f, 0.0f, true});
          gemm_update_tile(tile, NR, c, ldc, m, n, alpha, beta, pc == 0);
        }
      }
  }
}

// C[i0:i1, j0:j1] on the calling thread: every column panel and K slice in order, packing op(B) itself.
template <class Micro>
void gemm_block(const MicroKernel& kern, const GemmOperand& a, const GemmOperand& b, int64_t i0, int64_t i1, int64_t j0,
                int64_t j1, int64_t K, float alpha, float beta, float* C, int64_t ldc) {
  static thread_local PackBuffer packed_b;
  const int64_t kslice = gemm_k_slice(K);
  float* bbuf = packed_b.get(kslice * std::min(kern.nc, round_up(j1 - j0, Micro::NR)));
  for (int64_t jc = j0; jc < j1; jc += kern.nc) {
    const int64_t nc = std::min(kern.nc, j1 - jc);
    for (int64_t pc = 0; pc < K; pc += kslice) {
      const int64_t kc = std::min(kslice, K - pc);
      pack_b<Micro::NR>(b, pc, kc, jc, nc, bbuf);
      gemm_rows<Micro>(kern, a, bbuf, i0, i1, jc, nc, pc, kc, alpha, beta, C, ldc);
    }
  }
}

// The MicroKernel entry for Micro, with blocking sizes from the caches.
template <class Micro>
MicroKernel make_micro_kernel(const char* name) {
  MicroKernel k{name, Micro::MR, Micro::NR, 0, 0, &gemm_block<Micro>, &pack_b<Micro::NR>, &gemm_rows<Micro>};
  gemm_blocking(Micro::MR, Micro::NR, &k.mc, &k.nc);
  return k;
}

}  // namespace
}  // namespace medix
