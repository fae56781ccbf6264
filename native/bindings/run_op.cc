// N-API face of the op table (native/core/op_registry.h): runOp / runOpAsync run any registered op,
// forward or backward, in any dtype it is registered in, on any backend this build has, for tests,
// benches and tools; opTable lists the entries and opSupports answers whether a backend implements
// one. Inputs are typed arrays by argument name (bf16 arguments as Uint16Arrays of the bits),
// options by option name; outputs come back as fresh arrays (zeroed, then written or
// accumulated), in/out arguments are updated in place. Errors name the op as its TS wrapper does.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "../core/error.h"
#include "../core/backend_op.h"
#include "../core/op_registry.h"
#include "../ops/rope.h"
#include "registry.h"
#include "../tests/guard_backend.h"
#if defined(MEDIX_HAVE_CUDA)
#include "../cuda/cuda_backend.h"
#endif

namespace medix::bindings {

Backend& backend_named(const std::string& name) {
  if (name == "cpu") return cpu_backend();
  if (name == "cuda-guard") {
    // CUDA's Backend contract over the CPU ops, for the tests of the bindings' device paths on any machine:
    // memory no host code may touch outside an op, every pointer checked (a violation throws, naming it).
    static testing::GuardBackend guard;
    guard.strict = true;
    return guard;
  }
#if defined(MEDIX_HAVE_CUDA)
  if (name == "cuda") return cuda::backend();
#else
  MEDIX_CHECK(name != "cuda", "backend 'cuda' is not in this build (built without CUDA)");
#endif
  fail("unknown backend '", name, "' (known: cpu, cuda; cuda-guard for tests)");
}

Backend& backend_option(const Napi::Object& options, const std::string& fn) {
  const std::vector<std::string> names = {"cpu", "cuda", "cuda-guard"};
  return backend_named(names[js::choice_or(options, "backend", fn, names, 0)]);
}

namespace {

// The backend ops backend `name` has, without making it (the CUDA backend needs a device, the guard maps an
// arena): what the kernels registered for "cuda" (nothing in a build without CUDA), the guard's table, or
// the CPU's.
const OpTable& ops_named(const std::string& name) {
  if (name == "cuda") return registered_ops("cuda");
  if (name == "cuda-guard") return testing::GuardBackend::guard_ops();
  return backend_named(name).ops();
}

// A list option (rope sections, image grids): an array or Int32Array of non-negative integers.
std::vector<int64_t> integer_list(const Napi::Value& v, const std::string& fn, const std::string& name) {
  if (v.IsTypedArray()) {
    const js::View<int32_t> a = js::i32(v, fn, name.c_str());
    return std::vector<int64_t>(a.data, a.data + a.length);
  }
  if (!v.IsArray()) throw Napi::TypeError::New(v.Env(), fn + ": " + name + " must be an array of integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> out;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value e = arr.Get(i);
    const double d = e.IsNumber() ? e.As<Napi::Number>().DoubleValue() : -1.0;
    if (!(d >= 0 && d <= 16777216.0 && std::floor(d) == d))
      throw Napi::TypeError::New(v.Env(),
                                 fn + ": " + name + "[" + std::to_string(i) + "] must be a non-negative integer");
    out.push_back(static_cast<int64_t>(d));
  }
  return out;
}

Attrs read_attrs(const OpPass& p, const Napi::Object& o) {
  const std::string fn = p.js_name;
  Attrs a;
  for (const AttrSpec& s : p.attrs) {
    const Napi::Value v = o.Get(s.name);
    if (v.IsUndefined() && !s.required) continue;
    switch (s.kind) {
      case AttrKind::Int:
        a.num[s.name] =
            static_cast<double>(js::integer(o, s.name, fn, static_cast<int64_t>(s.lo), static_cast<int64_t>(s.hi)));
        break;
      case AttrKind::Number:
        a.num[s.name] = js::number(o, s.name, fn);
        break;
      case AttrKind::Bool:
        a.num[s.name] = js::boolean_or(o, s.name, fn, false) ? 1.0 : 0.0;
        break;
      case AttrKind::Choice:
        a.num[s.name] = js::choice_or(o, s.name, fn, std::vector<std::string>(s.choices.begin(), s.choices.end()), 0);
        break;
      case AttrKind::IntList:
        if (!v.IsNull()) a.lists[s.name] = integer_list(v, fn, std::string("option '") + s.name + "'");
        break;
    }
  }
  return a;
}

// One call read from JS: the pass, its options, host views of its inputs and fresh output arrays.
struct Call {
  const OpDef* def = nullptr;
  const OpPass* pass = nullptr;
  Backend* be = nullptr;
  Attrs attrs;
  Tensors host;
  Napi::Object result;
  std::vector<Napi::Value> keep;                           // JS arrays an async call reads or writes
  std::vector<std::shared_ptr<std::vector<int32_t>>> own;  // i32 inputs copied for an async call
};

Call read_call(const Napi::CallbackInfo& info, bool async) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "runOp: name must be a string ('<family>.forward')");
  if (!info[1].IsString()) throw Napi::TypeError::New(env, "runOp: backend must be a string ('cpu' or 'cuda')");
  if (!info[4].IsUndefined() && !info[4].IsString())
    throw Napi::TypeError::New(env, "runOp: dtype must be a string ('f32' or 'bf16')");
  const DType dtype = info[4].IsUndefined() ? DType::F32 : parse_dtype(info[4].As<Napi::String>().Utf8Value());
  Call c;
  c.pass = &find_pass(info[0].As<Napi::String>().Utf8Value(), &c.def, dtype);
  c.be = &backend_named(info[1].As<Napi::String>().Utf8Value());
  const std::string fn = c.pass->js_name;
  const Napi::Object inputs = js::object(info[2], fn, "inputs");
  const Napi::Object options = js::object(info[3], fn, "options");
  c.attrs = read_attrs(*c.pass, options);
  const Napi::Array keys = inputs.GetPropertyNames();
  for (uint32_t k = 0; k < keys.Length(); ++k) {
    const std::string key = keys.Get(k).As<Napi::String>().Utf8Value();
    bool known = false;
    for (const ArgSpec& s : c.pass->args) known = known || (s.role != Role::Out && key == s.name);
    MEDIX_CHECK(known, fn, ": inputs has no argument '", key, "'");
  }
  c.result = Napi::Object::New(env);
  for (const ArgSpec& s : c.pass->args) {
    if (s.role == Role::Out) continue;
    const Napi::Value v = inputs.Get(s.name);
    if (v.IsUndefined() || v.IsNull()) continue;
    Tensor t;
    if (s.dtype == DType::F32) {
      const js::View<float> f = js::f32(v, fn, s.name);
      t = {f.data, static_cast<int64_t>(f.length), DType::F32};
    } else if (s.dtype == DType::BF16) {
      const js::View<uint16_t> h = js::bf16(v, fn, s.name);
      t = {h.data, static_cast<int64_t>(h.length), DType::BF16};
    } else {
      const js::View<int32_t> i = js::i32(v, fn, s.name);
      t = {i.data, static_cast<int64_t>(i.length), DType::I32};
      if (async) {  // a value changed while the work runs must not send it outside its arrays
        c.own.push_back(std::make_shared<std::vector<int32_t>>(i.data, i.data + i.length));
        t.data = c.own.back()->data();
      }
    }
    c.host.t[s.name] = t;
    c.keep.push_back(v);
    if (s.role == Role::InOut) c.result.Set(s.name, v);
  }
  const std::map<std::string, int64_t> lengths = check_call(*c.pass, c.attrs, c.host);
  for (const ArgSpec& s : c.pass->args) {
    if (s.role != Role::Out || !lengths.count(s.name)) continue;
    const size_t n = static_cast<size_t>(lengths.at(s.name));
    Napi::TypedArray arr;
    if (s.dtype == DType::F32) {
      auto f = Napi::Float32Array::New(env, n);
      c.host.t[s.name] = {f.Data(), static_cast<int64_t>(n), DType::F32};
      arr = f;
    } else if (s.dtype == DType::BF16) {
      auto h = Napi::Uint16Array::New(env, n);
      c.host.t[s.name] = {h.Data(), static_cast<int64_t>(n), DType::BF16};
      arr = h;
    } else {
      auto i = Napi::Int32Array::New(env, n);
      c.host.t[s.name] = {i.Data(), static_cast<int64_t>(n), DType::I32};
      arr = i;
    }
    c.result.Set(s.name, arr);
    c.keep.push_back(arr);
  }
  return c;
}

// runOp(name, backend, inputs, options, dtype = 'f32') -> {<outputs and in/out arguments>, value}:
// value is the op's scalar result (sumSquares' sum, the log-prob head's peak bytes), 0 for the others.
Napi::Value RunOp(const Napi::CallbackInfo& info) {
  Call c = read_call(info, false);
  const double value = run_call(*c.def, *c.pass, *c.be, c.attrs, c.host);
  c.result.Set("value", value);
  return c.result;
}

// runOpAsync: the same on a libuv worker, resolving with the same object. The f32 inputs are read in
// place: leave them unchanged until the promise settles.
Napi::Value RunOpAsync(const Napi::CallbackInfo& info) {
  auto c = std::make_shared<Call>(read_call(info, true));
  auto held = std::make_shared<Napi::ObjectReference>(Napi::Persistent(c->result));
  auto value = std::make_shared<double>(0);
  return js::run_async(
      info.Env(), [c, value] { *value = run_call(*c->def, *c->pass, *c->be, c->attrs, c->host); },
      [held, value](Napi::Env env) -> Napi::Value {
        Napi::Object r = held->Value();
        r.Set("value", Napi::Number::New(env, *value));
        return r;
      },
      c->keep);
}

// ropeSectionMap(headDim, sections, interleaved) -> Uint8Array: which position component each of the
// headDim/2 frequencies of multi-section rope uses (rope.h).
Napi::Value RopeSectionMap(const Napi::CallbackInfo& info) {
  const std::string fn = "ropeSectionMap";
  const int64_t head_dim = js::integer_arg(info[0], fn, "headDim", 2, 4096);
  const std::vector<int64_t> sections = integer_list(info[1], fn, "sections");
  if (!info[2].IsBoolean()) throw Napi::TypeError::New(info.Env(), fn + ": interleaved must be a boolean");
  std::vector<uint8_t> map;
  try {
    map = rope_section_map(head_dim, sections, info[2].As<Napi::Boolean>().Value());
  } catch (const Error& e) {
    throw Napi::RangeError::New(info.Env(), fn + ": sections is invalid: " + e.what());
  }
  auto out = Napi::Uint8Array::New(info.Env(), map.size());
  std::copy(map.begin(), map.end(), out.Data());
  return out;
}

// opTable() -> [{family, dtype, backends, forward, backward?}], one per entry, with the passes' JS names;
// backends: those of this build (cpu, cuda) that implement every backend op of the entry.
Napi::Value OpTable(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<OpDef>& table = op_table();
  auto list = Napi::Array::New(env, table.size());
  for (size_t k = 0; k < table.size(); ++k) {
    const OpDef& d = table[k];
    auto o = Napi::Object::New(env);
    o.Set("family", d.family);
    auto backends = Napi::Array::New(env);
    for (const char* name : {"cpu", "cuda"})
      if (supports(ops_named(name), d)) backends.Set(backends.Length(), name);
    o.Set("dtype", dtype_name(d.dtype));
    o.Set("backends", backends);
    o.Set("forward", d.forward.js_name);
    if (d.has_backward) o.Set("backward", d.backward.js_name);
    list.Set(uint32_t(k), o);
  }
  return list;
}

// opSupports(backend, family, dtype) -> boolean
Napi::Value OpSupports(const Napi::CallbackInfo& info) {
  for (int i = 0; i < 3; ++i)
    if (!info[i].IsString()) throw Napi::TypeError::New(info.Env(), "opSupports: arguments must be strings");
  const std::string dtype = info[2].As<Napi::String>().Utf8Value();
  MEDIX_CHECK(dtype == "f32" || dtype == "bf16", "opSupports: unknown dtype '", dtype, "' (f32, bf16)");
  const bool yes = supports(ops_named(info[0].As<Napi::String>().Utf8Value()), info[1].As<Napi::String>().Utf8Value(),
                            parse_dtype(dtype));
  return Napi::Boolean::New(info.Env(), yes);
}

}  // namespace

void init_op_runner(Napi::Env env, Napi::Object exports) {
  exports.Set("runOp", Napi::Function::New(env, RunOp, "runOp"));
  exports.Set("runOpAsync", Napi::Function::New(env, RunOpAsync, "runOpAsync"));
  exports.Set("opTable", Napi::Function::New(env, OpTable, "opTable"));
  exports.Set("ropeSectionMap", Napi::Function::New(env, RopeSectionMap, "ropeSectionMap"));
  exports.Set("opSupports", Napi::Function::New(env, OpSupports, "opSupports"));
}

}  // namespace medix::bindings
