// STUB
#include "registry.h"
namespace medix::bindings {
void init_model(Napi::Env, Napi::Object) {}
}
