#include "vision_grid.h"

#include "../core/error.h"

namespace medix {

std::vector<ImageGrid> image_grids(const int32_t* g, int64_t n, int64_t merge) {
  constexpr int64_t kMaxGrid = 1 << 16;
  MEDIX_CHECK(n > 0 && n % 3 == 0, "grids must hold (t, h, w) triples, got length ", n);
  std::vector<ImageGrid> out;
  for (int64_t i = 0; i < n; i += 3) {
    const ImageGrid grid{g[i], g[i + 1], g[i + 2]};
    MEDIX_CHECK(grid.t >= 1 && grid.h >= merge && grid.w >= merge && grid.h % merge == 0 && grid.w % merge == 0 &&
                    grid.t <= kMaxGrid && grid.h <= kMaxGrid && grid.w <= kMaxGrid,
                "grid ", i / 3, " (", grid.t, ", ", grid.h, ", ", grid.w,
                ") must have t >= 1 and h, w positive multiples of merge (", merge, ")");
    out.push_back(grid);
  }
  return out;
}

int64_t patch_count(const std::vector<ImageGrid>& grids) {
  int64_t n = 0;
  for (const ImageGrid& g : grids) n += g.t * g.h * g.w;
  return n;
}

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
