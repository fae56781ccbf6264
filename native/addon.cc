// Module init: registers the bindings, nothing else.
#include "bindings/registry.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  using namespace medix::bindings;
  init_system(env, exports);
  init_layer_ops(env, exports);
  init_attention(env, exports);
  init_logprob(env, exports);
  init_optim(env, exports);
  init_model(env, exports);
  init_generate(env, exports);
  init_dist(env, exports);
  init_fsdp(env, exports);
  init_vision(env, exports);
  init_moe_ops(env, exports);
  init_selftest(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(medix, Init)
