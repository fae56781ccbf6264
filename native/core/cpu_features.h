// What this CPU can do, asked once at run time (cpuid through the compiler's builtins; sysconf for the
// caches), so that one build picks the widest kernels on every x86-64 machine it runs on. The
// environment variable MEDIX_CPU=avx2 (read once, at first use) hides AVX-512 from every choice.
#pragma once
#include <cstdint>
#include <string>

namespace medix {

struct CpuFeatures {
  bool avx512;                            // AVX-512 F, BW, DQ, VL: the 512-bit GEMM micro-kernel and FMA probe
  bool avx512_bf16;                       // AVX512-BF16 dot products
  bool capped;                            // MEDIX_CPU=avx2 turned the AVX-512 flags off
  int64_t l1d_bytes, l2_bytes, l3_bytes;  // per-core L1d and L2, shared L3; defaults where sysconf says 0
};

const CpuFeatures& cpu_features();

// The vector extensions found, e.g. "AVX2 FMA AVX512F AVX512BF16", for benchmark notes.
std::string cpu_feature_names();

}  // namespace medix
