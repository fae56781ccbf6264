// STUB
#include "registry.h"
namespace medix::bindings {
void init_optim(Napi::Env, Napi::Object) {}
}
