// N-API face of AdamW and the gradient utilities (native/ops/adamw.h), for tests and tools that
// update a buffer outside a model. adamwStep and scaleInPlace update their arrays in place;
// sumSquares accepts non-finite values (detecting them is its job) and returns +Inf/NaN for them.
#include <cstdint>
#include <sstream>
#include <string>

#include "../ops/adamw.h"
#include "registry.h"

namespace medix::bindings {
namespace {

const bool kFinite = true;

[[noreturn]] void range_error(const Napi::Env& env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

// A hyper-parameter that must lie in [lo, hi) (hi_open) or [lo, hi].
float hyper(const Napi::Object& o, const char* key, const std::string& fn, double dflt, double lo, double hi,
            bool hi_open) {
  const double x = js::number_or(o, key, fn, dflt);
  if (x < lo || x > hi || (hi_open && x == hi)) {
    std::ostringstream os;
    os << fn << ": option '" << key << "' must be in [" << lo << ", " << hi << (hi_open ? ")" : "]") << ", got " << x;
    range_error(o.Env(), os.str());
  }
  return static_cast<float>(x);
}

// adamwStep(p, g, m, v, {lr, beta1?, beta2?, eps?, weightDecay?, step, decay?}): updates p, m, v in place.
Napi::Value AdamwStep(const Napi::CallbackInfo& info) {
  const std::string fn = "adamwStep";
  const Napi::Object o = js::object(info[4], fn, "options");
  AdamWConfig cfg;                            // its defaults (adamw.h) for the keys not given
  const double lr = js::number(o, "lr", fn);  // required
  if (lr < 0) range_error(info.Env(), fn + ": option 'lr' must be >= 0");
  cfg.lr = static_cast<float>(lr);
  cfg.beta1 = hyper(o, "beta1", fn, cfg.beta1, 0.0, 1.0, true);
  cfg.beta2 = hyper(o, "beta2", fn, cfg.beta2, 0.0, 1.0, true);
  cfg.eps = hyper(o, "eps", fn, cfg.eps, 0.0, 1e6, false);
  if (!(cfg.eps > 0)) range_error(info.Env(), fn + ": option 'eps' must be > 0");
  cfg.weight_decay = hyper(o, "weightDecay", fn, cfg.weight_decay, 0.0, 1e6, false);
  const int64_t step = js::integer(o, "step", fn, 1, int64_t(1) << 53);
  const bool decay = js::boolean_or(o, "decay", fn, true);
  const js::View<float> p = js::f32(info[0], fn, "p", -1, nullptr, kFinite);
  const int64_t n = static_cast<int64_t>(p.length);
  const js::View<float> g = js::f32(info[1], fn, "g", n, "p.length", kFinite);
  const js::View<float> m = js::f32(info[2], fn, "m", n, "p.length", kFinite);
  const js::View<float> v = js::f32(info[3], fn, "v", n, "p.length", kFinite);
  for (size_t i = 0; i < v.length; ++i)
    if (v.data[i] < 0) range_error(info.Env(), fn + ": v[" + std::to_string(i) + "] is negative (a second moment)");
  cpu::adamw_step(p.data, g.data, m.data, v.data, n, cfg, step, decay);
  return info.Env().Undefined();
}

// sumSquares(g) -> sum of g[i]^2 in double, the same for any thread count; +Inf/NaN if g holds one.
Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  const js::View<float> g = js::f32(info[0], "sumSquares", "g");
  return Napi::Number::New(info.Env(), cpu::sum_squares(g.data, static_cast<int64_t>(g.length)));
}

// scaleInPlace(g, s): g *= s (gradient clipping).
Napi::Value ScaleInPlace(const Napi::CallbackInfo& info) {
  const std::string fn = "scaleInPlace";
  const js::View<float> g = js::f32(info[0], fn, "g");
  const double s = js::number_arg(info[1], fn, "s");
  cpu::scale_inplace(g.data, static_cast<float>(s), static_cast<int64_t>(g.length));
  return info.Env().Undefined();
}

}  // namespace

void init_optim(Napi::Env env, Napi::Object exports) {
  exports.Set("adamwStep", Napi::Function::New(env, AdamwStep, "adamwStep"));
  exports.Set("sumSquares", Napi::Function::New(env, SumSquares, "sumSquares"));
  exports.Set("scaleInPlace", Napi::Function::New(env, ScaleInPlace, "scaleInPlace"));
}

}  // namespace medix::bindings
