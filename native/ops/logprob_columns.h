// Column statistics of a block of logits stored vocabulary-major (zt[r * ld + j]: vocabulary entry r,
// token j), for the fused log-prob forward: one vector lane per token and the rows taken in order, so
// a token's bits depend neither on which tokens share its block nor on its lane, nor on the vector
// width (every width runs simd_exp.h's operations). Compiled at 8 lanes for the build's own target and
// at 16 in an AVX-512 file; the forward uses the width of the gemm register kernel in use, so
// choosing the "avx2" register kernel also tests the 8-lane columns on an AVX-512 machine.
#pragma once
#include <cstdint>

namespace medix::cpu {

struct LogprobColumns {
  const char* name;
  // out[j] = max over rows r < rows of zt[r * ld + j], for j < cols.
  void (*max)(const float* zt, int64_t rows, int64_t cols, int64_t ld, float* out);
  // s[j] = sum_r e and, when w is not null, w[j] = sum_r e (zt[r][j] - m[j]), e = exp(zt[r][j] - m[j]).
  void (*exp_sums)(const float* zt, int64_t rows, int64_t cols, int64_t ld, const float* m, float* s, float* w);
  // In place, the logits become d(loss)/d(logits) of loss = g logp + h entropy (the target's g aside):
  //   p = exp(z - lse[j]),  dz = -(g[j] p) - h[j] p (z + c[j]),  c[j] = entropy[j] - lse[j].
  void (*dlogits)(float* zt, int64_t rows, int64_t cols, int64_t ld, const float* lse, const float* g, const float* h,
                  const float* c);
};

const LogprobColumns& base_logprob_columns();
const LogprobColumns* avx512_logprob_columns();  // nullptr when not compiled in or the CPU lacks AVX-512

}  // namespace medix::cpu
