// What the test programs that compare models (cuda_conformance's whole-model cases,
// device_memory_guard) share: every parameter tensor as one flat vector, and a small Qwen3-VL setup.
#pragma once

#include <cmath>
#include <vector>

#include "model/qwen3.h"

namespace medix {

// Every parameter tensor's values (get_param) or gradients (get_grad), in params() order, end to end.
inline std::vector<float> every_param(const Qwen3Model& model,
                                      void (Qwen3Model::*get)(const ParamInfo&, float*) const) {
  std::vector<float> all;
  for (const ParamInfo& p : model.params()) {
    std::vector<float> part(p.numel);
    (model.*get)(p, part.data());
    all.insert(all.end(), part.begin(), part.end());
  }
  return all;
}

// `text` with a two-block vision tower (head_dim 32, as the GPU attention needs) and a deepstack merger
// after block 0, interleaved multi-section rope, the vocabulary's last id as the image token.
inline Qwen3Config with_test_vision(Qwen3Config c) {
  VisionConfig v;
  v.depth = 2, v.hidden = 64, v.heads = 2, v.intermediate = 96, v.out_hidden = c.hidden;
  v.patch = 4, v.merge = 2, v.side = 6, v.deepstack_indexes = {0};
  c.vision = v;
  c.image_token_id = static_cast<int32_t>(c.vocab - 1);
  c.mrope_section = {c.head_dim / 2 - 2 * (c.head_dim / 6), c.head_dim / 6, c.head_dim / 6};
  c.mrope_interleaved = true;
  c.prefix = "model.language_model.";
  return c;
}

// Two images for the packed batch {0, 9, 16} of those programs: 4 x 4 patches (4 tokens, rows 2-5 of
// the first sequence) and 2 x 4 (2 tokens, rows 11-12 of the second); pixels a fixed smooth pattern.
struct TestImages {
  std::vector<ImageGrid> grids = {{1, 4, 4}, {1, 2, 4}};
  std::vector<int32_t> rows = {2, 3, 4, 5, 11, 12};
  std::vector<float> pixels;
  explicit TestImages(const VisionConfig& v) : pixels(static_cast<size_t>(24 * v.patch_inputs())) {
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = std::sin(0.37f * static_cast<float>(i));
  }
  // Writes the image token into `tokens` at the image rows and points the batch at the images.
  void place(const Qwen3Config& cfg, std::vector<int32_t>& tokens, PackedBatch& b) const {
    for (int32_t r : rows) tokens[r] = cfg.image_token_id;
    b.pixels = pixels.data(), b.grids = grids.data(), b.n_images = static_cast<int64_t>(grids.size());
  }
  void place(CachedStep& s) const {
    s.pixels = pixels.data(), s.grids = grids.data(), s.n_images = static_cast<int64_t>(grids.size());
    s.image_rows = rows.data(), s.n_image_rows = static_cast<int64_t>(rows.size());
  }
};

}  // namespace medix
