#include "reservation.h"

#include "error.h"

namespace medix {

Reservation::Reservation(char* base, int64_t bytes, int64_t granule)
    : base_(base), bytes_(bytes), granule_(granule), users_((bytes + granule - 1) / granule, 0) {}

template <typename Fn>
void Reservation::each_changed_run(int64_t from, int64_t n, int step, Fn fn) {
  MEDIX_CHECK(from >= 0 && n >= 0 && from + n <= bytes_, "reservation: bytes [", from, ", ", from + n,
              ") lie outside the ", bytes_, " reserved");
  if (n == 0) return;
  const int64_t first = from / granule_, end = (from + n - 1) / granule_ + 1;
  int64_t run = -1;  // start of the current run of changed granules
  for (int64_t g = first; g <= end; ++g) {
    bool changed = false;
    if (g < end) {
      MEDIX_CHECK(step > 0 || users_[g] > 0, "reservation: release of bytes [", from, ", ", from + n,
                  ") that were not acquired");
      users_[g] += step;
      changed = step > 0 ? users_[g] == 1 : users_[g] == 0;
    }
    if (changed && run < 0) run = g;
    if (!changed && run >= 0) {
      fn(run, g - run);
      run = -1;
    }
  }
}

void Reservation::acquire(int64_t from, int64_t n) {
  each_changed_run(from, n, +1, [&](int64_t g, int64_t count) {
    back(g, count);
    backed_ += count;
  });
}

void Reservation::release(int64_t from, int64_t n) {
  each_changed_run(from, n, -1, [&](int64_t g, int64_t count) {
    unback(g, count);
    backed_ -= count;
  });
}

}  // namespace medix
