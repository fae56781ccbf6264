// N-API face of the token losses (native/ops/loss.h): O(T) and synchronous. Every argument is checked
// (types, lengths, NaN/Inf, option values) before any work starts, and the messages name the function and the
// argument. (The fused log-prob head runs through runOp: native/core/op_table.cc.)
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "../ops/loss.h"
#include "registry.h"

namespace medix::bindings {
namespace {

const bool kFinite = true;

[[noreturn]] void range_error(const Napi::Env& env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

// ---------------------------------------------------------------------------------------------
// Losses

const std::vector<std::string> kAggModes = {"token-mean", "seq-mean-token-mean", "seq-mean-token-sum"};
const std::vector<std::string> kKinds = {"ppo", "gspo", "cispo"};
const std::vector<std::string> kKlEstimators = {"none", "k1", "abs", "mse", "low_var_kl"};

// A string option that has no default.
int required_choice(const Napi::Object& o, const char* key, const std::string& fn,
                    const std::vector<std::string>& allowed) {
  const int i = js::choice_or(o, key, fn, allowed, -1);
  if (i < 0) {
    std::string list;
    for (size_t k = 0; k < allowed.size(); ++k) list += (k ? ", '" : "'") + allowed[k] + "'";
    throw Napi::TypeError::New(o.Env(), fn + ": option '" + key + "' is required (one of " + list + ")");
  }
  return i;
}

double non_negative(const Napi::Object& o, const char* key, const std::string& fn) {
  const double x = js::number_or(o, key, fn, 0.0);
  if (x < 0) range_error(o.Env(), fn + ": option '" + key + "' must be >= 0, got " + std::to_string(x));
  return x;
}

AggSpec parse_agg(const Napi::Object& o, const std::string& fn) {
  AggSpec agg;
  agg.mode = static_cast<LossAgg>(required_choice(o, "agg", fn, kAggModes));
  agg.global_tokens = non_negative(o, "globalTokens", fn);
  agg.global_seqs = non_negative(o, "globalSeqs", fn);
  return agg;
}

// mask: a Float32Array of T zeros and ones.
js::View<float> mask_arg(const Napi::Value& v, int64_t T, const std::string& fn, const char* name) {
  const js::View<float> mask = js::f32(v, fn, name, T, "T");
  for (size_t i = 0; i < mask.length; ++i)
    if (mask.data[i] != 0.0f && mask.data[i] != 1.0f)
      range_error(v.Env(),
                  fn + ": " + name + "[" + std::to_string(i) + "] must be 0 or 1, got " + std::to_string(mask.data[i]));
  return mask;
}

TokenBatch token_batch(const js::View<float>& mask, const Napi::Value& cu_value, int64_t T, const std::string& fn,
                       const char* cu_name) {
  const js::View<int32_t> cu = js::i32(cu_value, fn, cu_name);
  js::check_cu_seqlens(cu, T, fn, cu_name);
  TokenBatch b;
  b.T = T;
  b.cu_seqlens = cu.data;
  b.n_seqs = static_cast<int64_t>(cu.length) - 1;
  b.mask = mask.data;
  return b;
}

PolicyLossConfig parse_policy_config(const Napi::Object& o, const std::string& fn) {
  PolicyLossConfig c;
  c.kind = static_cast<PolicyLossKind>(required_choice(o, "kind", fn, kKinds));
  c.agg = parse_agg(o, fn);
  const double clip_low = js::number(o, "clipLow", fn), clip_high = js::number(o, "clipHigh", fn);
  if (!(clip_low >= 0 && clip_low < 1))
    range_error(o.Env(), fn + ": option 'clipLow' must be in [0, 1), got " + std::to_string(clip_low));
  if (!(clip_high >= 0))
    range_error(o.Env(), fn + ": option 'clipHigh' must be >= 0, got " + std::to_string(clip_high));
  c.clip_low = static_cast<float>(clip_low);
  c.clip_high = static_cast<float>(clip_high);
  const double dual = js::number_or(o, "dualClip", fn, 0.0);
  if (!(dual == 0 || dual > 1))
    range_error(o.Env(), fn + ": option 'dualClip' must be 0 (off) or > 1, got " + std::to_string(dual));
  if (dual != 0 && c.kind != PolicyLossKind::PPO)
    range_error(o.Env(), fn + ": option 'dualClip' applies to kind 'ppo' only");
  c.dual_clip = static_cast<float>(dual);
  c.kl = static_cast<KlEstimator>(js::choice_or(o, "kl", fn, kKlEstimators, 0));
  c.kl_coef = static_cast<float>(js::number_or(o, "klCoef", fn, 0.0));
  c.entropy_coef = static_cast<float>(js::number_or(o, "entropyCoef", fn, 0.0));
  return c;
}

Napi::Float32Array zeros(Napi::Env env, int64_t n) { return Napi::Float32Array::New(env, static_cast<size_t>(n)); }

// policyLoss({logp, oldLogp, refLogp?, advantages, mask, entropy?, cuSeqlens}, options)
//   -> {loss, metrics, dlogp, dentropy?}
Napi::Value PolicyLoss(const Napi::CallbackInfo& info) {
  const std::string fn = "policyLoss";
  const Napi::Object inputs = js::object(info[0], fn, "inputs");
  const PolicyLossConfig cfg = parse_policy_config(js::object(info[1], fn, "options"), fn);
  const js::View<float> logp = js::f32(inputs.Get("logp"), fn, "inputs.logp", -1, nullptr, kFinite);
  const int64_t T = static_cast<int64_t>(logp.length);
  PolicyLossInputs in;
  in.logp = logp.data;
  in.old_logp = js::f32(inputs.Get("oldLogp"), fn, "inputs.oldLogp", T, "T = logp.length", kFinite).data;
  in.advantages = js::f32(inputs.Get("advantages"), fn, "inputs.advantages", T, "T = logp.length", kFinite).data;
  in.ref_logp = js::f32_opt(inputs.Get("refLogp"), fn, "inputs.refLogp", T, "T = logp.length", kFinite).data;
  in.entropy = js::f32_opt(inputs.Get("entropy"), fn, "inputs.entropy", T, "T = logp.length", kFinite).data;
  const js::View<float> mask = mask_arg(inputs.Get("mask"), T, fn, "inputs.mask");
  const TokenBatch b = token_batch(mask, inputs.Get("cuSeqlens"), T, fn, "inputs.cuSeqlens");
  if (cfg.kl != KlEstimator::None && !in.ref_logp)
    throw Napi::TypeError::New(info.Env(), fn + ": option kl '" + kKlEstimators[static_cast<int>(cfg.kl)] +
                                               "' needs inputs.refLogp (the reference policy's log-probs)");
  if (cfg.entropy_coef != 0.0f && !in.entropy)
    throw Napi::TypeError::New(info.Env(), fn + ": option 'entropyCoef' != 0 needs inputs.entropy");

  Napi::Env env = info.Env();
  auto dlogp = zeros(env, T);
  Napi::Object result = Napi::Object::New(env);
  float* dentropy = nullptr;
  if (in.entropy) {
    auto d = zeros(env, T);
    dentropy = d.Data();
    result.Set("dentropy", d);
  }
  const PolicyLossMetrics m = cpu::policy_loss(in, b, cfg, dlogp.Data(), dentropy);
  Napi::Object metrics = Napi::Object::New(env);
  metrics.Set("pg_loss", m.pg_loss);
  metrics.Set("kl_loss", m.kl_loss);
  metrics.Set("entropy", m.entropy);
  metrics.Set("pg_clipfrac_higher", m.pg_clipfrac_higher);
  metrics.Set("pg_clipfrac_lower", m.pg_clipfrac_lower);
  metrics.Set("ppo_kl", m.ppo_kl);
  metrics.Set("tokens", m.tokens);
  result.Set("loss", m.loss);
  result.Set("metrics", metrics);
  result.Set("dlogp", dlogp);
  return result;
}

// klValues(logp, refLogp, {kl}) -> Float32Array: the per-token KL estimate of the policy loss's KL
// term, for callers that use it outside the loss (KL in the reward).
Napi::Value KlValues(const Napi::CallbackInfo& info) {
  const std::string fn = "klValues";
  const js::View<float> logp = js::f32(info[0], fn, "logp", -1, nullptr, kFinite);
  const js::View<float> ref =
      js::f32(info[1], fn, "refLogp", static_cast<int64_t>(logp.length), "logp.length", kFinite);
  const auto estimator =
      static_cast<KlEstimator>(required_choice(js::object(info[2], fn, "options"), "kl", fn, kKlEstimators));
  auto out = zeros(info.Env(), static_cast<int64_t>(logp.length));
  float* kl = out.Data();
  for (size_t t = 0; t < logp.length; ++t) kl[t] = cpu::kl_value(estimator, logp.data[t], ref.data[t], nullptr);
  return out;
}

// sftLoss(logp, mask, cuSeqlens, {agg, globalTokens?, globalSeqs?}) -> {loss, dlogp}
Napi::Value SftLoss(const Napi::CallbackInfo& info) {
  const std::string fn = "sftLoss";
  const AggSpec agg = parse_agg(js::object(info[3], fn, "options"), fn);
  const js::View<float> logp = js::f32(info[0], fn, "logp", -1, nullptr, kFinite);
  const int64_t T = static_cast<int64_t>(logp.length);
  const js::View<float> mask = mask_arg(info[1], T, fn, "mask");
  const TokenBatch b = token_batch(mask, info[2], T, fn, "cuSeqlens");
  Napi::Env env = info.Env();
  auto dlogp = zeros(env, T);
  const double loss = cpu::sft_loss(logp.data, b, agg, dlogp.Data());
  Napi::Object result = Napi::Object::New(env);
  result.Set("loss", loss);
  result.Set("dlogp", dlogp);
  return result;
}

}  // namespace

void init_loss_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("policyLoss", Napi::Function::New(env, PolicyLoss, "policyLoss"));
  exports.Set("sftLoss", Napi::Function::New(env, SftLoss, "sftLoss"));
  exports.Set("klValues", Napi::Function::New(env, KlValues, "klValues"));
}

}  // namespace medix::bindings
