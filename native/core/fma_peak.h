// The machine's arithmetic ceiling, measured: a register-only fused multiply-add loop on the widest
// vector unit present (AVX-512 when the CPU has it, else AVX2+FMA) on every thread of the pool.
// Nothing touches memory, so the figure is what the FMA ports can do, the bound every GEMM and every
// MFU is compared with.
#pragma once
#include <cstdint>

namespace medix {

struct FmaPeak {
  double gflops;    // best run, all threads together
  const char* isa;  // "AVX-512" or "AVX2+FMA"; "none" (gflops 0) off x86-64
};

// Best of `repeats` runs of about `ms` milliseconds each.
FmaPeak measure_fma_peak(int repeats, double ms);

}  // namespace medix
