// STUB
#include "registry.h"
namespace medix::bindings {
void init_layer_ops(Napi::Env, Napi::Object) {}
}
