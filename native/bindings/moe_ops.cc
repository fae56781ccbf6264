// N-API face of the mixture-of-experts load-balancing loss with its gradient (native/ops/moe.h) and the
// routing time; the sparse block itself runs through runOp (its op-table entry in native/ops/moe.cc).
// Synchronous; arguments are checked before any memory is touched.
#include <cstdint>
#include <string>
#include <vector>

#include "../ops/moe.h"
#include "registry.h"

namespace medix::bindings {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 20;
const bool kFinite = true;

// moeAuxLoss(logits [L*T*E], cuSeqlens, options {tokens, experts, topK, layers, backend = "cpu"}) ->
// {loss: number[] per sequence, dLogits [L*T*E]: d(sum of the losses)/d(logits)}. Routing and the gradient
// run on the backend, as the model runs them (backend ops MoeRouteForward, MoeAuxBackward); the load
// statistics and the loss itself are host math there too (moe_load_accumulate, moe_aux_loss).
Napi::Value MoeAuxLoss(const Napi::CallbackInfo& info) {
  const std::string fn = "moeAuxLoss";
  Napi::Object opts = js::object(info[2], fn, "options");
  MoeShape s;
  s.T = js::integer(opts, "tokens", fn, 0, kMaxDim);
  s.E = js::integer(opts, "experts", fn, 1, 4096);
  s.K = js::integer(opts, "topK", fn, 1, s.E);
  const int64_t L = js::integer(opts, "layers", fn, 1, 4096);
  auto logits = js::f32(info[0], fn, "logits", L * s.T * s.E, "layers*tokens*experts", kFinite);
  auto cu = js::i32(info[1], fn, "cuSeqlens");
  js::check_cu_seqlens(cu, s.T, fn, "cuSeqlens");
  Backend& be = backend_option(opts, fn);
  const int64_t S = static_cast<int64_t>(cu.length) - 1, n = L * s.T * s.E;
  std::vector<double> counts(S * s.E), sums(S * s.E);
  std::vector<float> probs(s.T * s.E), dlogits(n);
  std::vector<int32_t> experts(s.T * s.K);
  auto logits_d = backend_array<float>(be, n), probs_d = backend_array<float>(be, n);
  auto dlogits_d = backend_array<float>(be, n), weights_d = backend_array<float>(be, s.T * s.K);
  auto experts_d = backend_array<int32_t>(be, s.T * s.K), order_d = backend_array<int32_t>(be, s.T * s.K);
  auto offsets_d = backend_array<int32_t>(be, s.E + 1);
  be.from_host(logits_d.get(), logits.data, sizeof(float) * n);
  for (int64_t l = 0; l < L; ++l) {
    float* p = probs_d.get() + l * s.T * s.E;
    be.run<MoeRouteForward>(p, experts_d.get(), weights_d.get(), order_d.get(), offsets_d.get(),
                            logits_d.get() + l * s.T * s.E, s);
    be.to_host(probs.data(), p, sizeof(float) * probs.size());
    be.to_host(experts.data(), experts_d.get(), sizeof(int32_t) * experts.size());
    cpu::moe_load_accumulate(counts.data(), sums.data(), probs.data(), experts.data(), cu.data, S, s);
  }
  for (int64_t l = 0; l < L; ++l)
    be.run<MoeAuxBackward>(dlogits_d.get() + l * s.T * s.E, probs_d.get() + l * s.T * s.E, counts.data(), cu.data, S, L,
                           1.0f, s);
  be.to_host(dlogits.data(), dlogits_d.get(), sizeof(float) * n);
  Napi::Env env = info.Env();
  auto loss = Napi::Array::New(env, S);
  for (int64_t q = 0; q < S; ++q)
    loss.Set(uint32_t(q),
             cpu::moe_aux_loss(counts.data() + q * s.E, sums.data() + q * s.E, cu.data[q + 1] - cu.data[q], L, s.E));
  auto o = Napi::Object::New(env);
  o.Set("loss", loss);
  o.Set("dLogits", js::new_f32(env, dlogits.data(), dlogits.size()));
  return o;
}

// moeRoutingSeconds() -> seconds the MoE ops spent routing since the last call (see moe.h).
Napi::Value MoeRoutingSeconds(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), cpu::moe_routing_seconds_take());
}

}  // namespace

void init_moe_ops(Napi::Env env, Napi::Object exports) {
  exports.Set("moeRoutingSeconds", Napi::Function::New(env, MoeRoutingSeconds, "moeRoutingSeconds"));
  exports.Set("moeAuxLoss", Napi::Function::New(env, MoeAuxLoss, "moeAuxLoss"));
}

}  // namespace medix::bindings
