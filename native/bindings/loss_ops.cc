// STUB
#include "registry.h"
namespace medix::bindings {
void init_loss_ops(Napi::Env, Napi::Object) {}
}
