// N-API face of the fused log-prob head (native/ops/logprob.h). The functions are heavy (a [T, V]
// worth of gemm) and return promises: the work runs on a libuv worker while the event loop goes on
// (logprobForwardSync is the forward on the calling thread, for small problems). Every argument is
// checked (types, lengths, NaN/Inf, target range, option values) before any work starts, and the
// messages name the function and the argument. The token losses that feed logprobBackward are
// TypeScript (src/rl/policy-loss.ts, src/rl/sft-loss.ts).
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../ops/logprob.h"
#include "registry.h"

namespace medix::bindings {
namespace {

constexpr int64_t kMaxTokens = (int64_t(1) << 31) - 1;
constexpr int64_t kMaxDim = int64_t(1) << 24;
const bool kFinite = true;

[[noreturn]] void range_error(const Napi::Env& env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

// ---------------------------------------------------------------------------------------------
// Fused log-probs

// Shape options {T?, hidden, vocab, temperature?, tokenChunk?, vocabChunk?}; T defaults to the
// targets' length and must equal it when given.
LogprobShape parse_shape(const Napi::Object& o, int64_t n_targets, const std::string& fn) {
  LogprobShape s;
  s.T = js::integer_or(o, "T", fn, 0, kMaxTokens, n_targets);
  if (s.T != n_targets)
    range_error(o.Env(),
                fn + ": targets must have length T = " + std::to_string(s.T) + ", got " + std::to_string(n_targets));
  s.hidden = js::integer(o, "hidden", fn, 1, kMaxDim);
  s.vocab = js::integer(o, "vocab", fn, 1, kMaxTokens);
  const double temperature = js::number_or(o, "temperature", fn, 1.0);
  if (!(temperature > 0))
    range_error(o.Env(), fn + ": option 'temperature' must be > 0, got " + std::to_string(temperature));
  s.temperature = static_cast<float>(temperature);
  s.token_chunk = js::integer_or(o, "tokenChunk", fn, 1, kMaxTokens, s.token_chunk);
  s.vocab_chunk = js::integer_or(o, "vocabChunk", fn, 1, kMaxTokens, s.vocab_chunk);
  return s;
}

// The checked inputs shared by forward and backward. targets are copied: the work reads them off
// the main thread, and a value changed meanwhile must not send it outside the arrays.
struct LogprobArgs {
  js::View<float> hidden, head;
  std::shared_ptr<std::vector<int32_t>> targets;
  LogprobShape shape;
};

// Where hidden, head, targets and options sit in the argument list.
struct LogprobArgPositions {
  size_t hidden, head, targets, options;
};

LogprobArgs logprob_args(const Napi::CallbackInfo& info, const LogprobArgPositions& at, const std::string& fn) {
  const Napi::Object o = js::object(info[at.options], fn, "options");
  const js::View<int32_t> targets = js::i32(info[at.targets], fn, "targets");
  LogprobArgs a;
  a.shape = parse_shape(o, static_cast<int64_t>(targets.length), fn);
  const LogprobShape& s = a.shape;
  a.hidden = js::f32(info[at.hidden], fn, "hidden", s.T * s.hidden, "T*hidden", kFinite);
  a.head = js::f32(info[at.head], fn, "head", s.vocab * s.hidden, "vocab*hidden", kFinite);
  js::check_ids(targets, -1, static_cast<int32_t>(s.vocab), fn, "targets");
  a.targets = std::make_shared<std::vector<int32_t>>(targets.data, targets.data + targets.length);
  return a;
}

// Runs `work` off the main thread and resolves with `result` plus its peakBytes. The JS arguments
// stay referenced until then so the arrays the work reads are not collected.
Napi::Value resolve_later(const Napi::CallbackInfo& info, std::function<size_t()> work, Napi::Object result) {
  auto held = std::make_shared<Napi::ObjectReference>(Napi::Persistent(result));
  auto peak = std::make_shared<size_t>(0);
  std::vector<Napi::Value> keep;
  for (size_t i = 0; i < info.Length(); ++i)
    if (info[i].IsObject()) keep.push_back(info[i]);  // null (an absent optional array) cannot be referenced
  return js::run_async(
      info.Env(), [work, peak] { *peak = work(); },
      [held, peak](Napi::Env env) -> Napi::Value {
        Napi::Object r = held->Value();
        r.Set("peakBytes", Napi::Number::New(env, static_cast<double>(*peak)));
        return r;
      },
      keep);
}

using ForwardFn = size_t (*)(float*, float*, float*, const float*, const float*, const int32_t*, const LogprobShape&);

// logprobForward / logprobNaive(hidden, head, targets, options) -> Promise<{logp, entropy?, lse, peakBytes}>;
// logprobForwardSync: the same result, computed on the calling thread (small problems, tests).
Napi::Value forward(const Napi::CallbackInfo& info, const std::string& fn, ForwardFn op, bool async) {
  const LogprobArgs a = logprob_args(info, {0, 1, 2, 3}, fn);
  const bool with_entropy = js::boolean_or(js::object(info[3], fn, "options"), "entropy", fn, false);
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  auto logp = Napi::Float32Array::New(env, a.shape.T);
  auto lse = Napi::Float32Array::New(env, a.shape.T);
  result.Set("logp", logp);
  result.Set("lse", lse);
  float* entropy = nullptr;
  if (with_entropy) {
    auto e = Napi::Float32Array::New(env, a.shape.T);
    entropy = e.Data();
    result.Set("entropy", e);
  }
  float* logp_p = logp.Data();
  float* lse_p = lse.Data();
  if (!async) {
    const size_t peak = op(logp_p, entropy, lse_p, a.hidden.data, a.head.data, a.targets->data(), a.shape);
    result.Set("peakBytes", Napi::Number::New(env, static_cast<double>(peak)));
    return result;
  }
  return resolve_later(
      info,
      [a, op, logp_p, entropy, lse_p] {
        return op(logp_p, entropy, lse_p, a.hidden.data, a.head.data, a.targets->data(), a.shape);
      },
      result);
}

Napi::Value LogprobForward(const Napi::CallbackInfo& info) {
  return forward(info, "logprobForward", cpu::logprob_forward, true);
}

Napi::Value LogprobForwardSync(const Napi::CallbackInfo& info) {
  return forward(info, "logprobForwardSync", cpu::logprob_forward, false);
}

Napi::Value LogprobNaive(const Napi::CallbackInfo& info) {
  return forward(info, "logprobNaive", cpu::logprob_forward_naive, true);
}

// logprobBackward(dlogp, dentropy|null, hidden, head, targets, lse, entropy|null, options)
//   -> Promise<{dhidden, dhead, peakBytes}>
Napi::Value LogprobBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "logprobBackward";
  const LogprobArgs a = logprob_args(info, {2, 3, 4, 7}, fn);
  const int64_t T = a.shape.T;
  const js::View<float> dlogp = js::f32(info[0], fn, "dlogp", T, "T", kFinite);
  const js::View<float> dentropy = js::f32_opt(info[1], fn, "dentropy", T, "T", kFinite);
  const js::View<float> lse = js::f32(info[5], fn, "lse", T, "T", kFinite);
  const js::View<float> entropy = js::f32_opt(info[6], fn, "entropy", T, "T", kFinite);
  if ((dentropy.data == nullptr) != (entropy.data == nullptr))
    throw Napi::TypeError::New(info.Env(), fn + ": dentropy and entropy go together (give both or neither)");
  Napi::Env env = info.Env();
  Napi::Object result = Napi::Object::New(env);
  auto dhidden = Napi::Float32Array::New(env, T * a.shape.hidden);
  auto dhead = Napi::Float32Array::New(env, a.shape.vocab * a.shape.hidden);
  result.Set("dhidden", dhidden);
  result.Set("dhead", dhead);
  float* dh = dhidden.Data();
  float* dw = dhead.Data();
  return resolve_later(
      info,
      [a, dh, dw, dlogp, dentropy, lse, entropy] {
        return cpu::logprob_backward(dh, dw, dlogp.data, dentropy.data, a.hidden.data, a.head.data, a.targets->data(),
                                     lse.data, entropy.data, a.shape);
      },
      result);
}

}  // namespace

void init_logprob(Napi::Env env, Napi::Object exports) {
  exports.Set("logprobForward", Napi::Function::New(env, LogprobForward, "logprobForward"));
  exports.Set("logprobForwardSync", Napi::Function::New(env, LogprobForwardSync, "logprobForwardSync"));
  exports.Set("logprobBackward", Napi::Function::New(env, LogprobBackward, "logprobBackward"));
  exports.Set("logprobNaive", Napi::Function::New(env, LogprobNaive, "logprobNaive"));
}

}  // namespace medix::bindings
