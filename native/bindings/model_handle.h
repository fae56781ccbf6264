// Access to the native model behind a JS Qwen3Model object, for bindings that work on a model
// (generation). The busy flag is the model's: a binding that runs async work on the model claims
// it, so generation and forward/backward never touch the weights at the same time.
#pragma once
#include <atomic>
#include <memory>
#include <string>

#include "../model/qwen3.h"
#include "js.h"

namespace medix::bindings {

struct ModelHandle {
  Qwen3Model* model = nullptr;
  std::shared_ptr<std::atomic<bool>> busy;
};

// Throws a TypeError naming fn and the argument if v is not a Qwen3Model created by this addon.
ModelHandle model_handle(const Napi::Value& v, const std::string& fn, const char* name);

}  // namespace medix::bindings
