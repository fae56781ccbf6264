// One Init function per binding area; addon.cc calls them all. Each adds its functions to `exports`.
#pragma once
#include <algorithm>
#include <cstdint>
#include <string>

#include "../core/backend.h"
#include "js.h"

namespace medix::bindings {

void init_system(Napi::Env env, Napi::Object exports);     // threads, GEMM kernel, build info
void init_op_runner(Napi::Env env, Napi::Object exports);  // any op of the op table (native/core/op_registry.h)
void init_model(Napi::Env env, Napi::Object exports);      // Qwen3 model
void init_generate(Napi::Env env, Napi::Object exports);   // KV-cache generation, sampling
void init_dist(Napi::Env env, Napi::Object exports);       // the run's processes, collectives
void init_vision(Napi::Env env, Napi::Object exports);     // Qwen3-VL vision tower
void init_moe_ops(Napi::Env env, Napi::Object exports);    // load-balancing loss, routing time
void init_fsdp(Napi::Env env, Napi::Object exports);       // full sharding of a model over the processes
void init_selftest(Napi::Env env, Napi::Object exports);   // medix selftest --dist: collectives per engine
void init_bf16_ops(Napi::Env env, Napi::Object exports);   // bf16 conversions, compute dtype

// The backend a binding's `backend` argument names: "cpu", or "cuda" in a build with CUDA (its first use
// throws when there is no device), or "cuda-guard" (native/tests/guard_backend.h: CUDA's memory contract
// over the CPU ops, so tests check the bindings' device paths without a GPU); anything else throws naming
// the known ones.
Backend& backend_named(const std::string& name);
// n zeroed elements of backend memory, at least one (a binding's arrays may be empty: no tokens, no history).
template <typename T>
BackendArray<T> backend_array(Backend& be, int64_t n) {
  return BackendArray<T>(be, std::max<int64_t>(1, n));
}
// The backend an options object's "backend" key names (the CPU's when absent), as backend_named.
Backend& backend_option(const Napi::Object& options, const std::string& fn);

}  // namespace medix::bindings
