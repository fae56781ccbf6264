// The run's processes from JS: who this process is, and the small collectives the trainer uses to
// make every rank take the same decisions (native/dist/communicator.h). Collectives run on a libuv
// worker, so the JS thread stays free while a rank waits for the others; inputs are copied before
// the promise is returned.
#include <algorithm>
#include <memory>
#include <string>
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

// A copy of a Float32Array's or Float64Array's values (collectives run after the call returns).
struct Numbers {
  DType type;
  std::vector<uint8_t> bytes;
  void* data() { return bytes.data(); }
  int64_t count() const { return static_cast<int64_t>(bytes.size() / dtype_bytes(type)); }
  Napi::Value to_js(Napi::Env env) const {
    const size_t n = static_cast<size_t>(count());
    if (type == DType::F32) {
      auto out = Napi::Float32Array::New(env, n);
      std::copy(bytes.begin(), bytes.end(), reinterpret_cast<uint8_t*>(out.Data()));
      return out;
    }
    auto out = Napi::Float64Array::New(env, n);
    std::copy(bytes.begin(), bytes.end(), reinterpret_cast<uint8_t*>(out.Data()));
    return out;
  }
};

Numbers numbers_arg(const Napi::Value& v, const std::string& fn) {
  const napi_typedarray_type kind = v.IsTypedArray() ? v.As<Napi::TypedArray>().TypedArrayType() : napi_int8_array;
  if (kind != napi_float32_array && kind != napi_float64_array)
    throw Napi::TypeError::New(v.Env(), fn + ": values must be a Float32Array or a Float64Array");
  auto a = v.As<Napi::TypedArray>();
  const auto* p = static_cast<const uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset();
  return Numbers{kind == napi_float32_array ? DType::F32 : DType::F64, std::vector<uint8_t>(p, p + a.ByteLength())};
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

  // allreduceSum(Float64Array | Float32Array): a new array of that type, the element-wise sum of
  // every rank's array.
  exports.Set("allreduceSum", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                auto buf = std::make_shared<Numbers>(numbers_arg(info[0], "allreduceSum"));
                return js::run_async(
                    info.Env(), [buf] { world().allreduce_sum(buf->data(), buf->count(), buf->type); },
                    [buf](Napi::Env env) { return buf->to_js(env); });
              }));

  // reduceSum(Float64Array | Float32Array, root): on root the element-wise sum over the ranks, on
  // the others their own values.
  exports.Set("reduceSum", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                auto buf = std::make_shared<Numbers>(numbers_arg(info[0], "reduceSum"));
                const int root = root_arg(info[1], "reduceSum");
                return js::run_async(
                    info.Env(), [buf, root] { world().reduce_sum(buf->data(), buf->count(), buf->type, root); },
                    [buf](Napi::Env env) { return buf->to_js(env); });
              }));

  // allgatherEqual(shard): every rank's shard (all of one length and type), concatenated in rank order.
  exports.Set("allgatherEqual", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                auto mine = std::make_shared<Numbers>(numbers_arg(info[0], "allgatherEqual"));
                auto all = std::make_shared<Numbers>(Numbers{mine->type, {}});
                all->bytes.resize(mine->bytes.size() * world().size());
                return js::run_async(
                    info.Env(),
                    [mine, all] { world().allgather_equal(mine->data(), all->data(), mine->count(), mine->type); },
                    [all](Napi::Env env) { return all->to_js(env); });
              }));

  // reduceScatterSum(values): this rank's shard of the element-wise sum over the ranks (values hold
  // size() equal shards; shard r is summed onto rank r).
  exports.Set("reduceScatterSum", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                auto all = std::make_shared<Numbers>(numbers_arg(info[0], "reduceScatterSum"));
                const int64_t ranks = world().size();
                if (all->count() % ranks != 0)
                  throw Napi::RangeError::New(
                      info.Env(), "reduceScatterSum: values has " + std::to_string(all->count()) +
                                      " elements, not a multiple of the " + std::to_string(ranks) + " ranks");
                auto mine = std::make_shared<Numbers>(Numbers{all->type, {}});
                mine->bytes.resize(all->bytes.size() / ranks);
                return js::run_async(
                    info.Env(),
                    [all, mine] { world().reduce_scatter_sum(all->data(), mine->data(), mine->count(), all->type); },
                    [mine](Napi::Env env) { return mine->to_js(env); });
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
                    info.Env(),
                    [mine, all] { *all = world().allgather(mine->data(), static_cast<int64_t>(mine->size())); },
                    [all](Napi::Env env) -> Napi::Value {
                      auto out = Napi::Array::New(env, all->size());
                      for (uint32_t r = 0; r < all->size(); ++r) out.Set(r, new_bytes(env, (*all)[r]));
                      return out;
                    });
              }));

  exports.Set("barrier", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return js::run_async(
                    info.Env(), [] { world().barrier(); },
                    [](Napi::Env env) -> Napi::Value { return env.Undefined(); });
              }));

  exports.Set("abortWorld", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                world().abort(static_cast<int>(js::integer_arg(info[0], "abortWorld", "code", 1, 255)));
              }));
}

}  // namespace medix::bindings
