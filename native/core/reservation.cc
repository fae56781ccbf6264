#include "reservation.h"

#include "error.h"

namespace medix {

Reservation::Reservation(char* base, int64_t bytes, int64_t granule)
    : base_(base), bytes_(bytes), granule_(granule), users_((bytes + granule - 1) / granule, 0) {}

std::vector<Reservation::Run> Reservation::granules(int64_t from, int64_t n, bool unused) const {
  MEDIX_CHECK(from >= 0 && n >= 0 && from + n <= bytes_, "reservation: bytes [", from, ", ", from + n,
              ") lie outside the ", bytes_, " reserved");
  std::vector<Run> runs;
  if (n == 0) return runs;
  for (int64_t g = from / granule_, end = (from + n - 1) / granule_ + 1; g < end; ++g) {
    if (unused && users_[g] != 0) continue;
    if (!runs.empty() && runs.back().first + runs.back().count == g)
      ++runs.back().count;
    else
      runs.push_back(Run{g, 1});
  }
  return runs;
}

void Reservation::acquire(int64_t from, int64_t n) {
  // Backed first, counted after: a granule whose backing fails (out of memory) leaves no trace, and the
  // runs this call backed before it go back.
  const std::vector<Run> fresh = granules(from, n, true);
  size_t done = 0;
  try {
    for (; done < fresh.size(); ++done) back(fresh[done].first, fresh[done].count);
  } catch (...) {
    for (size_t i = 0; i < done; ++i) unback(fresh[i].first, fresh[i].count);
    throw;
  }
  for (const Run& r : granules(from, n, false))
    for (int64_t g = r.first; g < r.first + r.count; ++g) ++users_[g];
  for (const Run& r : fresh) backed_ += r.count;
}

void Reservation::release(int64_t from, int64_t n) {
  const std::vector<Run> all = granules(from, n, false);
  for (const Run& r : all)
    for (int64_t g = r.first; g < r.first + r.count; ++g)
      MEDIX_CHECK(users_[g] > 0, "reservation: release of bytes [", from, ", ", from + n, ") that were not acquired");
  for (const Run& r : all)
    for (int64_t g = r.first; g < r.first + r.count; ++g) --users_[g];
  for (const Run& r : granules(from, n, true)) {
    unback(r.first, r.count);
    backed_ -= r.count;
  }
}

}  // namespace medix
