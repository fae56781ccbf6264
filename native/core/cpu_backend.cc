// The CPU backend: host memory, and the ops the reference implementations of native/ops register for
// "cpu" (backend_op.h's MEDIX_CPU_OP, which times each by kind when op profiling is on, op_profile.h).
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "backend.h"
#include "backend_op.h"
#include "host_reservation.h"

namespace medix {
namespace {

constexpr size_t kHugePage = size_t(2) << 20;

class CpuBackend final : public Backend {
 public:
  CpuBackend() : Backend(registered_ops("cpu")) {}
  const char* name() const override { return "cpu"; }

  void* alloc(size_t bytes) override { return allocate(bytes, true); }
  void* alloc_uninit(size_t bytes) override { return allocate(bytes, false); }
  void release(void* p) override { std::free(p); }
  void to_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void from_host(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  void zero_bytes(void* p, size_t bytes) override { std::memset(p, 0, bytes); }
  void copy_bytes(void* dst, const void* src, size_t bytes) override { std::memcpy(dst, src, bytes); }
  std::unique_ptr<Reservation> reserve(int64_t bytes) override { return host_reservation(bytes); }

 private:
  // zero: alloc's fill; alloc_uninit leaves the memory as the C library hands it out.
  void* allocate(size_t bytes, bool zero) {
    // 64-byte alignment suits AVX-512 loads. Large buffers (weights, optimizer state, activations)
    // are aligned to 2 MiB and asked to live on transparent huge pages: streaming the weights once
    // per decoded token is bound by how fast one core can read memory, and with 4 KiB pages a core
    // reads a large buffer at about two thirds of the rate it gets with 2 MiB pages (TLB misses,
    // and prefetches stop at page boundaries). Where THP is off or "never" this is only alignment.
    const size_t align = bytes >= kHugePage ? kHugePage : 64;
    const size_t rounded = bytes == 0 ? align : (bytes + align - 1) / align * align;
    void* p = std::aligned_alloc(align, rounded);
    if (!p) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    if (align == kHugePage) madvise(p, rounded, MADV_HUGEPAGE);  // advice only: failure changes nothing
#endif
    if (zero) std::memset(p, 0, rounded);  // after the advice, so the first touch already gets huge pages
    return p;
  }
};

}  // namespace

Backend& cpu_backend() {
  static CpuBackend backend;
  return backend;
}

}  // namespace medix
