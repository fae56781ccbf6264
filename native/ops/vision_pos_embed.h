// Learned position embedding of the Qwen3-VL vision tower: a side x side table (num_position_embeddings
// rows) bilinearly interpolated to each image's patch grid. Patch (r, c) of an h x w grid samples the
// table at (r * (side-1)/(h-1), c * (side-1)/(w-1)) (torch.linspace in float32); every frame of an
// image gets the same rows; output rows follow the merge-block order of vision_grid.h.
#pragma once
#include <cstdint>
#include <vector>

#include "vision_grid.h"
#include "../core/backend_op.h"

namespace medix::cpu {

// The four table rows a patch samples, (y0, x0), (y0, x1), (y1, x0), (y1, x1), and their bilinear weights.
struct PosEmbedTaps {
  int64_t row[4];
  float weight[4];
};

// The taps of every patch of the grids, in output order ([N]). kernels/vision_pos_embed.cu uploads these
// same values, so the two backends interpolate with the same weights to the bit.
std::vector<PosEmbedTaps> vision_pos_embed_taps(const std::vector<ImageGrid>& grids, int64_t merge, int64_t side);

// out: [N, dim] (overwritten); table: [side*side, dim].
void vision_pos_embed_forward(float* out, const float* table, const std::vector<ImageGrid>& grids, int64_t merge,
                              int64_t side, int64_t dim);
// dtable += the transpose: each output row's gradient scattered into its four table rows by weight.
void vision_pos_embed_backward(float* dtable, const float* dout, const std::vector<ImageGrid>& grids, int64_t merge,
                               int64_t side, int64_t dim);

}  // namespace medix::cpu

namespace medix {

// The grids of an op call are host memory, values only (backend_op.h).
template <>
struct PointerFree<std::vector<ImageGrid>> : std::true_type {};

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct VisionPosEmbedForward : BackendOp<VisionPosEmbedForward, decltype(cpu::vision_pos_embed_forward)> {
  static constexpr const char* name = "vision_pos_embed_forward";
  static constexpr OpKind kind = OpKind::Embedding;
  static constexpr OpArg args[] = {{"out"}, {"table"}, {"grids"}, {"merge"}, {"side"}, {"dim"}};
};
struct VisionPosEmbedBackward : BackendOp<VisionPosEmbedBackward, decltype(cpu::vision_pos_embed_backward)> {
  static constexpr const char* name = "vision_pos_embed_backward";
  static constexpr OpKind kind = OpKind::Embedding;
  static constexpr OpArg args[] = {{"dtable"}, {"dout"}, {"grids"}, {"merge"}, {"side"}, {"dim"}};
};

}  // namespace medix
