// N-API face of bf16 (native/core/bf16.h): the conversions on each path this CPU has, the linear op
// with bf16 weights (native/ops/linear.h), for tests and benches, and a model's compute dtype.
// bf16 arrays are Uint16Arrays of the raw bits.
#include <cstdint>
#include <string>

#include "../core/bf16.h"
#include "../core/error.h"
#include "../ops/linear.h"
#include "model_handle.h"
#include "registry.h"

namespace medix::bindings {
namespace {

constexpr int64_t kMaxTokens = (int64_t(1) << 31) - 1;
constexpr int64_t kMaxDim = int64_t(1) << 24;
const bool kFinite = true;

js::View<uint16_t> u16(const Napi::Value& v, const std::string& fn, const char* name, int64_t expect,
                       const char* what_len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array)
    throw Napi::TypeError::New(v.Env(), fn + ": " + name + " must be a Uint16Array (bf16 bits)");
  auto a = v.As<Napi::Uint16Array>();
  if (expect >= 0 && static_cast<int64_t>(a.ElementLength()) != expect)
    throw Napi::RangeError::New(v.Env(), fn + ": " + name + " must have length " + std::to_string(expect) + " (" +
                                             what_len + "), got " + std::to_string(a.ElementLength()));
  return {a.Data(), a.ElementLength()};
}

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
  const js::View<uint16_t> h = u16(info[0], fn, "h", -1, nullptr);
  const Bf16Path p = path_arg(info[1], fn);
  Napi::Float32Array out = Napi::Float32Array::New(info.Env(), h.length);
  bf16_to_f32(out.Data(), h.data, static_cast<int64_t>(h.length), p);
  return out;
}

struct Dims {
  int64_t T, in, out;
};
Dims dims(const Napi::Object& o, const std::string& fn) {
  return {js::integer(o, "T", fn, 1, kMaxTokens), js::integer(o, "in", fn, 1, kMaxDim),
          js::integer(o, "out", fn, 1, kMaxDim)};
}

// linearForwardBf16(x, W: Uint16Array, b | null, {T, in, out}) -> y, as linearForward.
Napi::Value LinearForwardBf16(const Napi::CallbackInfo& info) {
  const std::string fn = "linearForwardBf16";
  const Dims d = dims(js::object(info[3], fn, "options"), fn);
  auto x = js::f32(info[0], fn, "x", d.T * d.in, "T*in", kFinite);
  auto W = u16(info[1], fn, "W", d.out * d.in, "out*in");
  auto b = js::f32_opt(info[2], fn, "b", d.out, "out", kFinite);
  auto y = Napi::Float32Array::New(info.Env(), static_cast<size_t>(d.T * d.out));
  cpu::linear_forward_bf16(y.Data(), x.data, W.data, b.data, d.T, d.in, d.out);
  return y;
}

// linearBackwardBf16(dy, x, W: Uint16Array, {T, in, out, bias?}) -> {dx, dW, db?}, as linearBackward.
Napi::Value LinearBackwardBf16(const Napi::CallbackInfo& info) {
  const std::string fn = "linearBackwardBf16";
  const Napi::Object o = js::object(info[3], fn, "options");
  const Dims d = dims(o, fn);
  const bool bias = js::boolean_or(o, "bias", fn, false);
  auto dy = js::f32(info[0], fn, "dy", d.T * d.out, "T*out", kFinite);
  auto x = js::f32(info[1], fn, "x", d.T * d.in, "T*in", kFinite);
  auto W = u16(info[2], fn, "W", d.out * d.in, "out*in");
  Napi::Env env = info.Env();
  auto dx = Napi::Float32Array::New(env, static_cast<size_t>(d.T * d.in));
  auto dW = Napi::Float32Array::New(env, static_cast<size_t>(d.out * d.in));
  Napi::Object result = Napi::Object::New(env);
  float* db = nullptr;
  if (bias) {
    auto db_arr = Napi::Float32Array::New(env, static_cast<size_t>(d.out));
    db = db_arr.Data();
    result.Set("db", db_arr);
  }
  cpu::linear_backward_bf16(dx.Data(), dW.Data(), db, dy.data, x.data, W.data, d.T, d.in, d.out);
  result.Set("dx", dx);
  result.Set("dW", dW);
  return result;
}

// setComputeDtype(model, 'f32' | 'bf16'): the dtype of the model's matrix products (qwen3.h).
Napi::Value SetComputeDtype(const Napi::CallbackInfo& info) {
  const std::string fn = "setComputeDtype";
  const ModelHandle h = model_handle(info[0], fn, "model");
  if (h.busy->load()) throw Napi::Error::New(info.Env(), fn + ": the model is busy; await its call first");
  if (!info[1].IsString()) throw Napi::TypeError::New(info.Env(), fn + ": dtype must be 'f32' or 'bf16'");
  const std::string name = info[1].As<Napi::String>();
  h.model->set_compute_dtype(parse_compute_dtype(name.c_str(), fn.c_str()));
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
  exports.Set("linearForwardBf16", Napi::Function::New(env, LinearForwardBf16, "linearForwardBf16"));
  exports.Set("linearBackwardBf16", Napi::Function::New(env, LinearBackwardBf16, "linearBackwardBf16"));
  exports.Set("setComputeDtype", Napi::Function::New(env, SetComputeDtype, "setComputeDtype"));
  exports.Set("computeDtype", Napi::Function::New(env, ComputeDtype, "computeDtype"));
}

}  // namespace medix::bindings
