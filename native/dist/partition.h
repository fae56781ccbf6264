// How the ranks of a data-parallel run split the model's tensors between them: the optimizer state,
// the update and the checkpoint files of each tensor belong to one rank.
#pragma once
#include <cstdint>
#include <vector>

namespace medix {

// Tensors [first_tensor, end_tensor) of a flat layout, which occupy floats [offset, offset + numel).
struct Shard {
  int64_t first_tensor = 0, end_tensor = 0;
  int64_t offset = 0, numel = 0;
};

// `parts` contiguous runs of tensors (sizes in floats, in layout order) of about equal size: a tensor
// goes to the part its middle falls in. A part may be empty when one tensor is larger than a part.
std::vector<Shard> partition_tensors(const std::vector<int64_t>& numels, int parts);

}  // namespace medix
