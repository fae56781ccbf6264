// Full sharding of a model over the run's processes (Qwen3Model::set_full_shard), from JS. These
// take the JS model object and run on the model's thread (model_handle.h); collectives are async (a
// rank may wait for the others) and claim the model like its other async calls.
#include <memory>
#include <string>

#include "../core/error.h"
#include "../dist/communicator.h"
#if defined(MEDIX_HAVE_CUDA)
#include "../cuda/nccl.h"
#endif
#include "model_handle.h"
#include "registry.h"

namespace medix::bindings {
namespace {

// Runs a collective on the model off the JS thread, holding the model's busy flag until it settles.
Napi::Value on_model(const Napi::CallbackInfo& info, const std::string& fn, void (*work)(Qwen3Model&)) {
  ModelHandle h = model_handle(info[0], fn, "model");
  bool expected = false;
  if (!h.busy->compare_exchange_strong(expected, true))
    throw Napi::Error::New(info.Env(), fn + ": the model is busy with another call; await it before starting the next");
  Qwen3Model* m = h.model;
  auto busy = h.busy;
  return h.thread->async(
      info.Env(), [m, work] { work(*m); }, [](Napi::Env env) { return env.Undefined(); }, {info[0]},
      [busy] { busy->store(false); });
}

ModelHandle idle_model(const Napi::CallbackInfo& info, const std::string& fn) {
  ModelHandle h = model_handle(info[0], fn, "model");
  if (h.busy->load()) throw Napi::Error::New(info.Env(), fn + ": the model is busy with an async call; await it first");
  return h;
}

}  // namespace

void init_fsdp(Napi::Env env, Napi::Object exports) {
  exports.Set("fullShard", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const ModelHandle h = idle_model(info, "fullShard");
                Qwen3Model& m = *h.model;
                // The collectives move the model's buffers: MPI for host memory; on a GPU NCCL (made here,
                // the same step on every rank, even alone), with MPI summing the host scalars.
                if (&m.backend() == &cpu_backend()) {
                  h.thread->call([&] { m.set_full_shard(world()); });
                  return info.Env().Undefined();
                }
#if defined(MEDIX_HAVE_CUDA)
                h.thread->call([&] { m.set_full_shard(cuda::nccl_world(), world()); });
                return info.Env().Undefined();
#else
                fail("fullShard: full sharding on device ", m.backend().name(),
                     " needs NCCL, which this build has not (built without CUDA); use device cpu");
#endif
              }));
  exports.Set("isFullShard", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                return Napi::Boolean::New(info.Env(),
                                          model_handle(info[0], "isFullShard", "model").model->full_shard());
              }));
  exports.Set("gatherWeights", Napi::Function::New(env, [](const Napi::CallbackInfo& info) {
                return on_model(info, "gatherWeights", [](Qwen3Model& m) { m.gather_weights(); });
              }));
  exports.Set("releaseWeights", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const ModelHandle h = idle_model(info, "releaseWeights");
                h.thread->call([&] { h.model->release_weights(); });
                return info.Env().Undefined();
              }));
  exports.Set("probeFullShardMemory", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                if (!info[1].IsBoolean())
                  throw Napi::TypeError::New(info.Env(), "probeFullShardMemory: on must be a boolean");
                const ModelHandle h = idle_model(info, "probeFullShardMemory");
                h.model->probe_full_shard_memory(info[1].As<Napi::Boolean>().Value());
                return info.Env().Undefined();
              }));
  exports.Set("fullShardSlices", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const ModelHandle h = idle_model(info, "fullShardSlices");
                const Qwen3Model& m = *h.model;
                Napi::Env env = info.Env();
                const auto parts = m.full_shard_parts();
                auto list = Napi::Array::New(env, parts.size());
                for (size_t i = 0; i < parts.size(); ++i) {
                  auto p = Napi::Object::New(env);
                  p.Set("name", m.params()[parts[i].tensor].name);
                  p.Set("from", double(parts[i].from));
                  p.Set("count", double(parts[i].count));
                  p.Set("at", double(parts[i].at));
                  list.Set(i, p);
                }
                auto w = Napi::Float32Array::New(env, m.optimizer_floats());
                h.thread->call([&] { m.get_full_shard_weights(w.Data()); });
                auto out = Napi::Object::New(env);
                out.Set("parts", list);
                out.Set("weights", w);
                return out;
              }));
  exports.Set("fullShardMemory", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                const FullShardMemory m = idle_model(info, "fullShardMemory").model->full_shard_memory();
                auto out = Napi::Object::New(info.Env());
                out.Set("sliceBytes", double(m.slice_bytes));
                out.Set("gatheredBytes", double(m.gathered_bytes));
                out.Set("peakGatheredBytes", double(m.peak_gathered_bytes));
                out.Set("wholeStateBytes", double(m.whole_state_bytes));
                out.Set("largestUnitBytes", double(m.largest_unit_bytes));
                out.Set("allgatherBytes", double(m.allgather_bytes));
                out.Set("reduceScatterBytes", double(m.reduce_scatter_bytes));
                return out;
              }));
}

}  // namespace medix::bindings
