// STUB
#include "registry.h"
namespace medix::bindings {
void init_attention(Napi::Env, Napi::Object) {}
}
