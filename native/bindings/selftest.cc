// distSelftest(): `medix selftest --dist`'s native part (native/dist/selftest.h), on a libuv worker so
// the JS thread stays free while this rank waits for the others. Collective: every rank calls it.
#include <memory>

#include "../dist/selftest.h"
#include "registry.h"

namespace medix::bindings {
namespace {

Napi::Object engine_js(Napi::Env env, const EngineSelftest& e) {
  auto out = Napi::Object::New(env);
  out.Set("engine", e.engine);
  out.Set("ran", e.ran);
  out.Set("reason", e.reason);
  auto checks = Napi::Array::New(env, e.checks.size());
  for (uint32_t i = 0; i < e.checks.size(); ++i) {
    const CollectiveCheck& c = e.checks[i];
    auto o = Napi::Object::New(env);
    o.Set("collective", c.collective);
    o.Set("dtype", c.dtype);
    o.Set("pass", c.pass);
    o.Set("mismatches", static_cast<double>(c.mismatches));
    checks.Set(i, o);
  }
  out.Set("checks", checks);
  return out;
}

}  // namespace

void init_selftest(Napi::Env env, Napi::Object exports) {
  exports.Set("distSelftest", Napi::Function::New(env, [](const Napi::CallbackInfo& info) -> Napi::Value {
                auto report = std::make_shared<DistSelftest>();
                return js::run_async(
                    info.Env(), [report] { *report = run_dist_selftest(); },
                    [report](Napi::Env env) -> Napi::Value {
                      auto out = Napi::Object::New(env);
                      out.Set("rank", report->rank);
                      out.Set("size", report->size);
                      out.Set("host", engine_js(env, report->host));
                      out.Set("nccl", engine_js(env, report->nccl));
                      out.Set("enginesDiffer", static_cast<double>(report->engines_differ));
                      out.Set("failedAllRanks", static_cast<double>(report->failed_all_ranks));
                      return out;
                    });
              }));
}

}  // namespace medix::bindings
