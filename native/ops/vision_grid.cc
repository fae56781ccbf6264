#include "vision_grid.h"

namespace medix {

std::vector<int32_t> vision_patch_coords(const std::vector<ImageGrid>& grids, int64_t merge) {
  std::vector<int32_t> out;
  for (const ImageGrid& g : grids)
    for (int64_t f = 0; f < g.t; ++f)
      for (int64_t br = 0; br < g.h / merge; ++br)
        for (int64_t bc = 0; bc < g.w / merge; ++bc)
          for (int64_t ir = 0; ir < merge; ++ir)
            for (int64_t ic = 0; ic < merge; ++ic) {
              out.push_back(static_cast<int32_t>(br * merge + ir));
              out.push_back(static_cast<int32_t>(bc * merge + ic));
            }
  return out;
}

std::vector<int32_t> vision_cu_seqlens(const std::vector<ImageGrid>& grids) {
  std::vector<int32_t> cu{0};
  for (const ImageGrid& g : grids)
    for (int64_t f = 0; f < g.t; ++f) cu.push_back(cu.back() + static_cast<int32_t>(g.h * g.w));
  return cu;
}

}  // namespace medix
