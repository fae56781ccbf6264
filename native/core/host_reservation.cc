#include "host_reservation.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "error.h"

namespace medix {
namespace {

class HostReservation final : public Reservation {
 public:
  HostReservation(char* base, int64_t bytes, int64_t page) : Reservation(base, bytes, page) {}
  ~HostReservation() override { munmap(data(), static_cast<size_t>(bytes())); }

 private:
  // Pages appear on first write (MAP_NORESERVE): nothing to do until they are given back.
  void back(int64_t, int64_t) override {}
  void unback(int64_t first, int64_t count) override {
    const int64_t g = granule_bytes(), from = first * g, n = std::min(count * g, bytes() - from);
    MEDIX_CHECK(madvise(data() + from, static_cast<size_t>(n), MADV_DONTNEED) == 0,
                "reservation: giving pages back failed (", std::strerror(errno), ")");
  }
};

}  // namespace

std::unique_ptr<Reservation> host_reservation(int64_t bytes) {
  const int64_t page = static_cast<int64_t>(sysconf(_SC_PAGESIZE));
  const int64_t rounded = (std::max<int64_t>(bytes, 1) + page - 1) / page * page;
  void* p = mmap(nullptr, static_cast<size_t>(rounded), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  MEDIX_CHECK(p != MAP_FAILED, "reservation: reserving ", rounded, " bytes of address space failed (",
              std::strerror(errno), ")");
  return std::make_unique<HostReservation>(static_cast<char*>(p), rounded, page);
}

}  // namespace medix
