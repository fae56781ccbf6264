// Reading a vision tower config object from JS (the VisionTowerConfig of src/engine/vision.ts), shared by
// the vision bindings and the model binding. Throws a JS error naming the function and the field.
#pragma once
#include <string>
#include <vector>

#include "../model/qwen3_vl_vision.h"
#include "js.h"

namespace medix::bindings {

VisionConfig parse_vision_config(const Napi::Value& v, const std::string& fn);
// Int32Array of (t, h, w) triples; each h and w a positive multiple of merge.
std::vector<ImageGrid> parse_image_grids(const Napi::Value& v, int64_t merge, const std::string& fn);
// The images of a model call: their grids and a copy of their pixel rows (Float32Array of
// patches * patch_inputs values); `what` names the object holding them (e.g. "batch").
struct ImageInputs {
  std::vector<ImageGrid> grids;
  std::vector<float> pixels;
};
ImageInputs parse_image_inputs(const Napi::Value& grids, const Napi::Value& pixels, const VisionConfig& c,
                               const std::string& fn, const std::string& what);

}  // namespace medix::bindings
