// N-API face of bf16 (native/core/bf16.h): the conversions on each path this CPU has, for tests and
// benches, and a model's compute dtype. bf16 arrays are Uint16Arrays of the raw bits. The ops with
// bf16 arguments run through runOp (run_op.cc) with dtype 'bf16'.
#include <cstdint>
#include <string>

#include "../core/bf16.h"
#include "../core/error.h"
#include "model_handle.h"
#include "registry.h"

namespace medix::bindings {
namespace {

// The optional path argument: a name from bf16Paths(), or the best path when undefined.
Bf16Path path_arg(const Napi::Value& v, const std::string& fn) {
  if (v.IsUndefined()) return bf16_best_path();
  if (!v.IsString()) throw Napi::TypeError::New(v.Env(), fn + ": path must be a string");
  const std::string name = v.As<Napi::String>();
  for (Bf16Path p : bf16_paths())
    if (name == bf16_path_name(p)) return p;
  throw Napi::RangeError::New(v.Env(), fn + ": path '" + name + "' is not available here (see bf16Paths())");
}

// bf16Paths() -> the conversion paths this CPU and build can run, widest last.
Napi::Value Bf16Paths(const Napi::CallbackInfo& info) {
  const std::vector<Bf16Path> paths = bf16_paths();
  Napi::Array out = Napi::Array::New(info.Env(), paths.size());
  for (size_t i = 0; i < paths.size(); ++i) out.Set(static_cast<uint32_t>(i), bf16_path_name(paths[i]));
  return out;
}

// f32ToBf16(x: Float32Array, path?) -> Uint16Array (NaN and Inf allowed: their conversion is tested).
Napi::Value F32ToBf16(const Napi::CallbackInfo& info) {
  const std::string fn = "f32ToBf16";
  const js::View<float> x = js::f32(info[0], fn, "x");
  const Bf16Path p = path_arg(info[1], fn);
  Napi::Uint16Array out = Napi::Uint16Array::New(info.Env(), x.length);
  f32_to_bf16(out.Data(), x.data, static_cast<int64_t>(x.length), p);
  return out;
}

// bf16ToF32(h: Uint16Array, path?) -> Float32Array.
Napi::Value Bf16ToF32(const Napi::CallbackInfo& info) {
  const std::string fn = "bf16ToF32";
  const js::View<uint16_t> h = js::bf16(info[0], fn, "h");
  const Bf16Path p = path_arg(info[1], fn);
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), h.length);
  bf16_to_f32(out.Data(), h.data, static_cast<int64_t>(h.length), p);
  return out;
}

// setComputeDtype(model, 'f32' | 'bf16'): the dtype of the model's matrix products (qwen3.h).
Napi::Value SetComputeDtype(const Napi::CallbackInfo& info) {
  const std::string fn = "setComputeDtype";
  const ModelHandle h = model_handle(info[0], fn, "model");
  if (h.busy->load()) throw Napi::Error::New(info.Env(), fn + ": the model is busy; await its call first");
  if (!info[1].IsString()) throw Napi::TypeError::New(info.Env(), fn + ": dtype must be 'f32' or 'bf16'");
  const std::string name = info[1].As<Napi::String>();
  const ComputeDType d = parse_compute_dtype(name.c_str(), fn.c_str());
  h.thread->call([&] { h.model->set_compute_dtype(d); });  // may release the bf16 copy
  return info.Env().Undefined();
}

// computeDtype(model) -> 'f32' | 'bf16'.
Napi::Value ComputeDtype(const Napi::CallbackInfo& info) {
  const ModelHandle h = model_handle(info[0], "computeDtype", "model");
  return Napi::String::New(info.Env(), compute_dtype_name(h.model->compute_dtype()));
}

}  // namespace

void init_bf16_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("bf16Paths", Napi::Function::New(env, Bf16Paths, "bf16Paths"));
  exports.Set("f32ToBf16", Napi::Function::New(env, F32ToBf16, "f32ToBf16"));
  exports.Set("bf16ToF32", Napi::Function::New(env, Bf16ToF32, "bf16ToF32"));
  exports.Set("setComputeDtype", Napi::Function::New(env, SetComputeDtype, "setComputeDtype"));
  exports.Set("computeDtype", Napi::Function::New(env, ComputeDtype, "computeDtype"));
}

}  // namespace medix::bindings
