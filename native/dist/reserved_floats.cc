#include "reserved_floats.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "../core/error.h"

namespace medix {
namespace {
int64_t page_bytes() { return static_cast<int64_t>(sysconf(_SC_PAGESIZE)); }
}  // namespace

ReservedFloats::ReservedFloats(int64_t n) : bytes_(std::max<int64_t>(n, 1) * static_cast<int64_t>(sizeof(float))) {
  void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  MEDIX_CHECK(p != MAP_FAILED, "full sharding: reserving ", bytes_, " bytes of address space failed (",
              std::strerror(errno), ")");
  data_ = static_cast<float*>(p);
}

ReservedFloats::~ReservedFloats() { munmap(data_, bytes_); }

void ReservedFloats::discard(int64_t from, int64_t n) {
  if (n <= 0) return;
  const int64_t page = page_bytes();
  auto* base = reinterpret_cast<char*>(data_);
  const int64_t lo = from * static_cast<int64_t>(sizeof(float)), hi = (from + n) * static_cast<int64_t>(sizeof(float));
  const int64_t first_page = (lo + page - 1) / page * page, end_page = hi / page * page;
  if (first_page >= end_page) {
    std::memset(base + lo, 0, hi - lo);
    return;
  }
  std::memset(base + lo, 0, first_page - lo);
  std::memset(base + end_page, 0, hi - end_page);
  MEDIX_CHECK(madvise(base + first_page, end_page - first_page, MADV_DONTNEED) == 0,
              "full sharding: giving pages back failed (", std::strerror(errno), ")");
}

int64_t ReservedFloats::resident_bytes() const {
  const int64_t page = page_bytes();
  std::vector<unsigned char> in((bytes_ + page - 1) / page);
  MEDIX_CHECK(mincore(data_, bytes_, in.data()) == 0, "full sharding: mincore failed (", std::strerror(errno), ")");
  int64_t pages = 0;
  for (unsigned char c : in) pages += c & 1;
  return pages * page;
}

}  // namespace medix
