// Every parameter tensor of a model as one flat vector, for the test programs that compare models
// (cuda_conformance's whole-model cases, device_memory_guard).
#pragma once

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

}  // namespace medix
