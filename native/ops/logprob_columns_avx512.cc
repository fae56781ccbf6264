// The fused log-prob forward's column statistics on 16 lanes, compiled for AVX-512 by a target pragma
// (as core/gemm_avx512.cc) and used only when the CPU reports AVX-512. GCC on x86-64 only; elsewhere
// avx512_logprob_columns() is nullptr.
#include "logprob_columns.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
// Everything the pragma must not reach comes first: these headers' inline functions keep the base target.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../core/cpu_features.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512dq,avx512vl")
#include "logprob_columns_impl.h"

namespace medix::cpu {
namespace {

typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

LogprobColumns avx512_columns() { return make_logprob_columns<v16f, v16i>("avx512"); }

}  // namespace
}  // namespace medix::cpu
#pragma GCC pop_options

namespace medix::cpu {
const LogprobColumns* avx512_logprob_columns() {
  static const LogprobColumns c = avx512_columns();
  return cpu_features().avx512 ? &c : nullptr;
}
}  // namespace medix::cpu

#else
namespace medix::cpu {
const LogprobColumns* avx512_logprob_columns() { return nullptr; }
}  // namespace medix::cpu
#endif
