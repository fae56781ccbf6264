#include "partition.h"

#include <algorithm>

#include "../core/error.h"

namespace medix {

std::vector<Shard> partition_tensors(const std::vector<int64_t>& numels, int parts) {
  MEDIX_CHECK(parts >= 1, "partition_tensors: parts must be >= 1, got ", parts);
  int64_t total = 0;
  for (int64_t n : numels) total += n;
  std::vector<Shard> out(parts);
  // Parts that start here (empty until a tensor is added).
  auto open_parts = [&out](int from, int to, int64_t tensor, int64_t offset) {
    for (int q = from; q <= to; ++q) out[q] = Shard{tensor, tensor, offset, 0};
  };
  int64_t at = 0;
  int part = 0;
  for (size_t i = 0; i < numels.size(); ++i) {
    // The part holding the tensor's middle float; never before the previous tensor's part.
    const double middle = static_cast<double>(at) + 0.5 * static_cast<double>(numels[i]);
    const int want = total > 0 ? static_cast<int>(middle * parts / static_cast<double>(total)) : 0;
    const int p = std::clamp(want, part, parts - 1);
    open_parts(part + 1, p, static_cast<int64_t>(i), at);
    part = p;
    out[p].end_tensor = static_cast<int64_t>(i) + 1;
    out[p].numel += numels[i];
    at += numels[i];
  }
  open_parts(part + 1, parts - 1, static_cast<int64_t>(numels.size()), at);
  return out;
}

}  // namespace medix
