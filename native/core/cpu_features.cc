#include "cpu_features.h"

#include <unistd.h>

#include <cstdlib>

#include "error.h"

namespace medix {
namespace {

#ifdef _SC_LEVEL1_DCACHE_SIZE
int64_t cache_size(int name, int64_t fallback) {
  const long v = sysconf(name);
  return v > 0 ? v : fallback;  // some VMs and libcs report 0
}
#endif

CpuFeatures detect() {
  CpuFeatures f{};
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl");
#if __GNUC__ >= 12 || defined(__clang__)
  f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
#endif
#endif
  // MEDIX_CPU=avx2 runs an AVX-512 machine as an AVX2+FMA one would (every kernel choice reads these
  // flags): the other dispatch path gets tested and benchmarked on the machine in hand.
  if (const char* cap = std::getenv("MEDIX_CPU"); cap && *cap) {
    const std::string v(cap);
    MEDIX_CHECK(v == "avx2" || v == "native", "MEDIX_CPU must be 'avx2' or 'native', got '", v, "'");
    if (v == "avx2") {
      f.avx512 = f.avx512_bf16 = false;
      f.capped = true;
    }
  }
#ifdef _SC_LEVEL1_DCACHE_SIZE
  f.l1d_bytes = cache_size(_SC_LEVEL1_DCACHE_SIZE, 32 << 10);
  f.l2_bytes = cache_size(_SC_LEVEL2_CACHE_SIZE, 512 << 10);
  f.l3_bytes = cache_size(_SC_LEVEL3_CACHE_SIZE, 8 << 20);
#else
  f.l1d_bytes = 32 << 10, f.l2_bytes = 512 << 10, f.l3_bytes = 8 << 20;
#endif
  return f;
}

}  // namespace

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = detect();
  return f;
}

std::string cpu_feature_names() {
  std::string out;
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  // __builtin_cpu_supports takes string literals only, hence no loop.
  const auto add = [&out](bool has, const char* name) {
    if (has) out += std::string(out.empty() ? "" : " ") + name;
  };
  add(__builtin_cpu_supports("avx2"), "AVX2");
  add(__builtin_cpu_supports("fma"), "FMA");
  add(cpu_features().avx512, "AVX512F");
  add(cpu_features().avx512_bf16, "AVX512-BF16");
  if (cpu_features().capped) out += " (AVX-512 not used: MEDIX_CPU=avx2)";
#endif
  return out.empty() ? "no x86 vector extensions detected" : out;
}

}  // namespace medix
