// STUB
#include "registry.h"
namespace medix::bindings {
void init_system(Napi::Env, Napi::Object) {}
}
