// Patch grids of the Qwen3-VL vision tower. An image of grid (t, h, w) gives t*h*w patches, stored in
// 2x2 merge-block order: frame, block row, block column, row in block, column in block, so that each
// run of merge^2 consecutive patches is one token after the patch merger.
#pragma once
#include <cstdint>
#include <vector>

namespace medix {

struct ImageGrid {
  int64_t t = 1, h = 0, w = 0;  // frames and patch rows/columns; h and w are multiples of merge
};

// The grids of (t, h, w) triples g[0..n): throws medix::Error naming the bad grid unless every t >= 1
// and h, w are positive multiples of merge (each at most 65536).
std::vector<ImageGrid> image_grids(const int32_t* g, int64_t n, int64_t merge);

// Patches of all the grids (sum of t*h*w).
int64_t patch_count(const std::vector<ImageGrid>& grids);

// [N, 2] (row, column) of every patch of the images in order, in merge-block order.
std::vector<int32_t> vision_patch_coords(const std::vector<ImageGrid>& grids, int64_t merge);

// [n_images + 1] patch offsets, one segment per frame (cu_seqlens of the tower's attention).
std::vector<int32_t> vision_cu_seqlens(const std::vector<ImageGrid>& grids);

}  // namespace medix
