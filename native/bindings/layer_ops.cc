// N-API face of the layer ops of the Qwen3 decoder (native/ops: embedding, rmsnorm, linear, rope,
// swiglu, residual), for tests and tools that run one op at a time. Every function is synchronous,
// checks all its arguments (types, lengths, NaN, ids, option ranges) before touching memory, and
// returns fresh arrays; backward functions return gradients accumulated into zeroed arrays.
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../ops/embedding.h"
#include "../ops/linear.h"
#include "../ops/residual.h"
#include "../ops/rmsnorm.h"
#include "../ops/rope.h"
#include "../ops/swiglu.h"
#include "registry.h"

namespace medix::bindings {
namespace {

// Upper bounds on sizes keep every product of two or three of them far from int64 overflow.
constexpr int64_t kMaxTokens = (int64_t(1) << 31) - 1;
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxHeads = 4096;

const bool kFinite = true;

Napi::Float32Array zeros(Napi::Env env, int64_t n) { return Napi::Float32Array::New(env, static_cast<size_t>(n)); }

// ---------------------------------------------------------------------------------------------
// Embedding

Napi::Value EmbeddingForward(const Napi::CallbackInfo& info) {
  const std::string fn = "embeddingForward";
  Napi::Object o = js::object(info[2], fn, "options");
  const int64_t vocab = js::integer(o, "vocab", fn, 1, kMaxTokens);
  const int64_t dim = js::integer(o, "dim", fn, 1, kMaxDim);
  auto ids = js::i32(info[0], fn, "ids");
  auto table = js::f32(info[1], fn, "table", vocab * dim, "vocab*dim", kFinite);
  js::check_ids(ids, 0, static_cast<int32_t>(vocab), fn, "ids");
  const int64_t n = static_cast<int64_t>(ids.length);
  auto out = zeros(info.Env(), n * dim);
  cpu::embedding_forward(out.Data(), ids.data, table.data, n, dim);
  return out;
}

Napi::Value EmbeddingBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "embeddingBackward";
  Napi::Object o = js::object(info[2], fn, "options");
  const int64_t vocab = js::integer(o, "vocab", fn, 1, kMaxTokens);
  const int64_t dim = js::integer(o, "dim", fn, 1, kMaxDim);
  auto ids = js::i32(info[1], fn, "ids");
  const int64_t n = static_cast<int64_t>(ids.length);
  auto dout = js::f32(info[0], fn, "dout", n * dim, "ids.length*dim", kFinite);
  js::check_ids(ids, 0, static_cast<int32_t>(vocab), fn, "ids");
  auto dtable = zeros(info.Env(), vocab * dim);
  cpu::embedding_backward(dtable.Data(), dout.data, ids.data, n, dim);
  return dtable;
}

// ---------------------------------------------------------------------------------------------
// RMSNorm

Napi::Value RmsnormForward(const Napi::CallbackInfo& info) {
  const std::string fn = "rmsnormForward";
  Napi::Object o = js::object(info[2], fn, "options");
  const int64_t rows = js::integer(o, "rows", fn, 1, kMaxTokens);
  const int64_t dim = js::integer(o, "dim", fn, 1, kMaxDim);
  const double eps = js::number(o, "eps", fn);
  if (!(eps > 0))
    throw Napi::RangeError::New(info.Env(), fn + ": option 'eps' must be > 0, got " + std::to_string(eps));
  auto x = js::f32(info[0], fn, "x", rows * dim, "rows*dim", kFinite);
  auto w = js::f32(info[1], fn, "w", dim, "dim", kFinite);
  Napi::Env env = info.Env();
  auto out = zeros(env, rows * dim);
  auto rstd = zeros(env, rows);
  cpu::rmsnorm_forward(out.Data(), rstd.Data(), x.data, w.data, rows, dim, static_cast<float>(eps));
  Napi::Object result = Napi::Object::New(env);
  result.Set("out", out);
  result.Set("rstd", rstd);
  return result;
}

Napi::Value RmsnormBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "rmsnormBackward";
  Napi::Object o = js::object(info[4], fn, "options");
  const int64_t rows = js::integer(o, "rows", fn, 1, kMaxTokens);
  const int64_t dim = js::integer(o, "dim", fn, 1, kMaxDim);
  auto dout = js::f32(info[0], fn, "dout", rows * dim, "rows*dim", kFinite);
  auto x = js::f32(info[1], fn, "x", rows * dim, "rows*dim", kFinite);
  auto w = js::f32(info[2], fn, "w", dim, "dim", kFinite);
  auto rstd = js::f32(info[3], fn, "rstd", rows, "rows", kFinite);
  Napi::Env env = info.Env();
  auto dx = zeros(env, rows * dim);
  auto dw = zeros(env, dim);
  cpu::rmsnorm_backward(dx.Data(), dw.Data(), dout.data, x.data, w.data, rstd.data, rows, dim);
  Napi::Object result = Napi::Object::New(env);
  result.Set("dx", dx);
  result.Set("dw", dw);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Linear

struct LinearDims {
  int64_t T, in, out;
};

LinearDims linear_dims(const Napi::Object& o, const std::string& fn) {
  return {js::integer(o, "T", fn, 1, kMaxTokens), js::integer(o, "in", fn, 1, kMaxDim),
          js::integer(o, "out", fn, 1, kMaxDim)};
}

Napi::Value LinearForward(const Napi::CallbackInfo& info) {
  const std::string fn = "linearForward";
  const LinearDims d = linear_dims(js::object(info[3], fn, "options"), fn);
  auto x = js::f32(info[0], fn, "x", d.T * d.in, "T*in", kFinite);
  auto W = js::f32(info[1], fn, "W", d.out * d.in, "out*in", kFinite);
  auto b = js::f32_opt(info[2], fn, "b", d.out, "out", kFinite);
  auto y = zeros(info.Env(), d.T * d.out);
  cpu::linear_forward(y.Data(), x.data, W.data, b.data, d.T, d.in, d.out);
  return y;
}

Napi::Value LinearBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "linearBackward";
  Napi::Object o = js::object(info[3], fn, "options");
  const LinearDims d = linear_dims(o, fn);
  const bool bias = js::boolean_or(o, "bias", fn, false);
  auto dy = js::f32(info[0], fn, "dy", d.T * d.out, "T*out", kFinite);
  auto x = js::f32(info[1], fn, "x", d.T * d.in, "T*in", kFinite);
  auto W = js::f32(info[2], fn, "W", d.out * d.in, "out*in", kFinite);
  Napi::Env env = info.Env();
  auto dx = zeros(env, d.T * d.in);
  auto dW = zeros(env, d.out * d.in);
  Napi::Object result = Napi::Object::New(env);
  float* db = nullptr;
  if (bias) {
    auto db_arr = zeros(env, d.out);
    db = db_arr.Data();
    result.Set("db", db_arr);
  }
  cpu::linear_backward(dx.Data(), dW.Data(), db, dy.data, x.data, W.data, d.T, d.in, d.out);
  result.Set("dx", dx);
  result.Set("dW", dW);
  return result;
}

// ---------------------------------------------------------------------------------------------
// Rope

// A JS array of integers (rope sections).
std::vector<int64_t> integer_list(const Napi::Value& v, const std::string& fn, const char* name) {
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), fn + ": " + name + " must be an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1.0;
    if (!(d >= 0 && d <= kMaxDim && std::floor(d) == d))
      throw Napi::TypeError::New(v.Env(),
                                 fn + ": " + name + "[" + std::to_string(i) + "] must be a non-negative integer");
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

// rope_section_map with its error reported under the calling JS function and argument.
std::vector<uint8_t> section_map(Napi::Env env, int64_t head_dim, const std::vector<int64_t>& sections,
                                 bool interleaved, const std::string& fn, const char* name) {
  try {
    return rope_section_map(head_dim, sections, interleaved);
  } catch (const Error& e) {
    throw Napi::RangeError::New(env, fn + ": " + name + " is invalid: " + e.what());
  }
}

// Shape and rope spec parsed from the options of ropeForward / ropeBackward. Owns the section map
// that spec.freq_component points into.
struct RopeArgs {
  int64_t T = 0, heads = 0;
  std::vector<uint8_t> map;
  RopeSpec spec;
};

void parse_rope(RopeArgs& a, const Napi::Object& o, const std::string& fn) {
  a.T = js::integer(o, "T", fn, 1, kMaxTokens);
  a.heads = js::integer(o, "heads", fn, 1, kMaxHeads);
  a.spec.head_dim = js::integer(o, "headDim", fn, 2, kMaxHeads);
  if (a.spec.head_dim % 2 != 0)
    throw Napi::RangeError::New(o.Env(),
                                fn + ": option 'headDim' must be even, got " + std::to_string(a.spec.head_dim));
  const double theta = js::number(o, "theta", fn);
  if (!(theta > 0)) throw Napi::RangeError::New(o.Env(), fn + ": option 'theta' must be > 0");
  a.spec.theta = static_cast<float>(theta);
  const bool interleaved = js::boolean_or(o, "interleaved", fn, false);
  Napi::Value sections = o.Get("sections");
  if (!sections.IsUndefined() && !sections.IsNull()) {
    a.map = section_map(o.Env(), a.spec.head_dim, integer_list(sections, fn, "option 'sections'"), interleaved, fn,
                        "option 'sections'");
    a.spec.n_components = 3;
    a.spec.freq_component = a.map.data();
  }
}

Napi::Value RopeForward(const Napi::CallbackInfo& info) {
  const std::string fn = "ropeForward";
  RopeArgs a;
  Napi::Object o = js::object(info[2], fn, "options");
  parse_rope(a, o, fn);
  const bool in_place = js::boolean_or(o, "inPlace", fn, false);
  const int64_t n = a.T * a.heads * a.spec.head_dim;
  auto x = js::f32(info[0], fn, "x", n, "T*heads*headDim", kFinite);
  auto pos = js::i32(info[1], fn, "pos", a.spec.n_components * a.T, a.spec.freq_component ? "3*T" : "T");
  if (in_place) {
    cpu::rope_forward(x.data, x.data, pos.data, a.T, a.heads, a.spec);
    return info[0];
  }
  auto out = zeros(info.Env(), n);
  cpu::rope_forward(out.Data(), x.data, pos.data, a.T, a.heads, a.spec);
  return out;
}

Napi::Value RopeBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "ropeBackward";
  RopeArgs a;
  parse_rope(a, js::object(info[2], fn, "options"), fn);
  const int64_t n = a.T * a.heads * a.spec.head_dim;
  auto dout = js::f32(info[0], fn, "dout", n, "T*heads*headDim", kFinite);
  auto pos = js::i32(info[1], fn, "pos", a.spec.n_components * a.T, a.spec.freq_component ? "3*T" : "T");
  auto dx = zeros(info.Env(), n);
  cpu::rope_backward(dx.Data(), dout.data, pos.data, a.T, a.heads, a.spec);
  return dx;
}

Napi::Value RopeSectionMap(const Napi::CallbackInfo& info) {
  const std::string fn = "ropeSectionMap";
  const int64_t head_dim = js::integer_arg(info[0], fn, "headDim", 2, kMaxHeads);
  const std::vector<int64_t> sections = integer_list(info[1], fn, "sections");
  if (!info[2].IsBoolean()) throw Napi::TypeError::New(info.Env(), fn + ": interleaved must be a boolean");
  const std::vector<uint8_t> map =
      section_map(info.Env(), head_dim, sections, info[2].As<Napi::Boolean>().Value(), fn, "sections");
  auto out = Napi::Uint8Array::New(info.Env(), map.size());
  for (size_t i = 0; i < map.size(); ++i) out[i] = map[i];
  return out;
}

// ---------------------------------------------------------------------------------------------
// SwiGLU and residual add (elementwise: every input has the first input's length)

Napi::Value SwigluForward(const Napi::CallbackInfo& info) {
  const std::string fn = "swigluForward";
  auto gate = js::f32(info[0], fn, "gate", -1, nullptr, kFinite);
  const int64_t n = static_cast<int64_t>(gate.length);
  auto up = js::f32(info[1], fn, "up", n, "gate.length", kFinite);
  auto out = zeros(info.Env(), n);
  cpu::swiglu_forward(out.Data(), gate.data, up.data, n);
  return out;
}

Napi::Value SwigluBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "swigluBackward";
  auto dout = js::f32(info[0], fn, "dout", -1, nullptr, kFinite);
  const int64_t n = static_cast<int64_t>(dout.length);
  auto gate = js::f32(info[1], fn, "gate", n, "dout.length", kFinite);
  auto up = js::f32(info[2], fn, "up", n, "dout.length", kFinite);
  Napi::Env env = info.Env();
  auto dgate = zeros(env, n);
  auto dup = zeros(env, n);
  cpu::swiglu_backward(dgate.Data(), dup.Data(), dout.data, gate.data, up.data, n);
  Napi::Object result = Napi::Object::New(env);
  result.Set("dgate", dgate);
  result.Set("dup", dup);
  return result;
}

Napi::Value AddForward(const Napi::CallbackInfo& info) {
  const std::string fn = "addForward";
  auto a = js::f32(info[0], fn, "a", -1, nullptr, kFinite);
  const int64_t n = static_cast<int64_t>(a.length);
  auto b = js::f32(info[1], fn, "b", n, "a.length", kFinite);
  auto out = zeros(info.Env(), n);
  cpu::add_forward(out.Data(), a.data, b.data, n);
  return out;
}

Napi::Value AddInplace(const Napi::CallbackInfo& info) {
  const std::string fn = "addInplace";
  auto dst = js::f32(info[0], fn, "dst", -1, nullptr, kFinite);
  const int64_t n = static_cast<int64_t>(dst.length);
  auto src = js::f32(info[1], fn, "src", n, "dst.length", kFinite);
  cpu::add_inplace(dst.data, src.data, n);
  return info[0];
}

}  // namespace

void init_layer_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("embeddingForward", Napi::Function::New(env, EmbeddingForward, "embeddingForward"));
  exports.Set("embeddingBackward", Napi::Function::New(env, EmbeddingBackward, "embeddingBackward"));
  exports.Set("rmsnormForward", Napi::Function::New(env, RmsnormForward, "rmsnormForward"));
  exports.Set("rmsnormBackward", Napi::Function::New(env, RmsnormBackward, "rmsnormBackward"));
  exports.Set("linearForward", Napi::Function::New(env, LinearForward, "linearForward"));
  exports.Set("linearBackward", Napi::Function::New(env, LinearBackward, "linearBackward"));
  exports.Set("ropeForward", Napi::Function::New(env, RopeForward, "ropeForward"));
  exports.Set("ropeBackward", Napi::Function::New(env, RopeBackward, "ropeBackward"));
  exports.Set("ropeSectionMap", Napi::Function::New(env, RopeSectionMap, "ropeSectionMap"));
  exports.Set("swigluForward", Napi::Function::New(env, SwigluForward, "swigluForward"));
  exports.Set("swigluBackward", Napi::Function::New(env, SwigluBackward, "swigluBackward"));
  exports.Set("addForward", Napi::Function::New(env, AddForward, "addForward"));
  exports.Set("addInplace", Napi::Function::New(env, AddInplace, "addInplace"));
}

}  // namespace medix::bindings
