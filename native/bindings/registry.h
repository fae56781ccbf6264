// One Init function per binding area; addon.cc calls them all. Each adds its functions to `exports`.
#pragma once
#include "js.h"

namespace medix::bindings {

void init_system(Napi::Env env, Napi::Object exports);     // threads, GEMM kernel, build info
void init_layer_ops(Napi::Env env, Napi::Object exports);  // embedding, rmsnorm, linear, rope, swiglu, add
void init_attention(Napi::Env env, Napi::Object exports);  // attention
void init_logprob(Napi::Env env, Napi::Object exports);    // fused log-probs (the token losses are TS, src/rl)
void init_optim(Napi::Env env, Napi::Object exports);      // AdamW, gradient norm
void init_model(Napi::Env env, Napi::Object exports);      // Qwen3 model
void init_generate(Napi::Env env, Napi::Object exports);   // KV-cache generation, sampling
void init_dist(Napi::Env env, Napi::Object exports);       // the run's processes, collectives
void init_vision(Napi::Env env, Napi::Object exports);     // Qwen3-VL vision ops and tower
void init_moe_ops(Napi::Env env, Napi::Object exports);    // mixture-of-experts block, load-balancing loss
void init_fsdp(Napi::Env env, Napi::Object exports);       // full sharding of a model over the processes
void init_selftest(Napi::Env env, Napi::Object exports);   // medix selftest --dist: collectives per engine

}  // namespace medix::bindings
