// The run's processes from JS: who this process is, and the small collectives the trainer uses to
// make every rank take the same decisions (native/dist/communicator.h). Collectives run on a libuv
// worker, so the JS thread stays free while a rank waits for the others; inputs are copied before
// the promise is returned.
#include <algorithm>
#include <memory>
#include <vector>

#include "../dist/communicator.h"
#include "registry.h"

namespace medix::bindings {
namespace {

std::vector<uint8_t> bytes_arg(const Napi::Value& v, const std::string& fn, const char* name) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
    throw Napi::TypeError::New(v.Env(), fn + ": " + name + " must be a Uint8Array");
  auto a = v.As<Napi::Uint8Array>();
  return std::vector<uint8_t>(a.Data(), a.Data() + a.ElementLength());
}

int root_arg(const Napi::Value& v, const std::string& fn) {
  return static_cast<int>(js::integer_arg(v, fn, "root", 0, world().size() - 1));
}

Napi::Uint8Array new_bytes(Napi::Env env, const std::vector<uint8_t>& b) {
  auto out = Napi::Uint8Array::New(env, b.size());
  std::copy(b.begin(), b.end(), out.Data());
  return out;
}

}  // namespace

void init_dist(Napi::Env env, Napi::Object exports) {
  exports.Set("worldInfo", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    Communicator& w = world();
    Napi::Env env = info.Env();
    auto out = Napi::Object::New(env);
    out.Set("rank", w.rank());
    out.Set("size", w.size());
    out.Set("localRank", w.local_rank());
    out.Set("localSize", w.local_size());
    out.Set("backend", w.name());
    return out;
  }));

  // allreduceSum(Float64Array): a new array, the element-wise sum of every rank's array.
  exports.Set("allreduceSum", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
      throw Napi::TypeError::New(info.Env(), "allreduceSum: values must be a Float64Array");
    auto arr = info[0].As<Napi::Float64Array>();
    auto buf = std::make_shared<std::vector<double>>(arr.Data(), arr.Data() + arr.ElementLength());
    return js::run_async(
        info.Env(), [buf] { world().allreduce_sum(buf->data(), static_cast<int64_t>(buf->size())); },
        [buf](Napi::Env env) -> Napi::Value {
          auto out = Napi::Float64Array::New(env, buf->size());
          std::copy(buf->begin(), buf->end(), out.Data());
          return out;
        });
  }));

  // broadcast(bytes, root): root's bytes on every rank (the others' argument is ignored).
  exports.Set("broadcast", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    const std::string fn = "broadcast";
    const int root = root_arg(info[1], fn);
    auto buf = std::make_shared<std::vector<uint8_t>>();
    if (world().rank() == root) *buf = bytes_arg(info[0], fn, "bytes");
    return js::run_async(
        info.Env(),
        [buf, root] {
          Communicator& w = world();
          int64_t n = static_cast<int64_t>(buf->size());
          w.broadcast(&n, sizeof n, root);
          buf->resize(n);
          w.broadcast(buf->data(), n, root);
        },
        [buf](Napi::Env env) -> Napi::Value { return new_bytes(env, *buf); });
  }));

  // allgather(bytes): every rank's bytes, in rank order.
  exports.Set("allgather", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    auto mine = std::make_shared<std::vector<uint8_t>>(bytes_arg(info[0], "allgather", "bytes"));
    auto all = std::make_shared<std::vector<std::vector<uint8_t>>>();
    return js::run_async(
        info.Env(), [mine, all] { *all = world().allgather(mine->data(), static_cast<int64_t>(mine->size())); },
        [all](Napi::Env env) -> Napi::Value {
          auto out = Napi::Array::New(env, all->size());
          for (uint32_t r = 0; r < all->size(); ++r) out.Set(r, new_bytes(env, (*all)[r]));
          return out;
        });
  }));

  exports.Set("barrier", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
    return js::run_async(
        info.Env(), [] { world().barrier(); }, [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
  }));

  exports.Set("abortWorld", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
    world().abort(static_cast<int>(js::integer_arg(info[0], "abortWorld", "code", 1, 255)));
  }));
}

}  // namespace medix::bindings
