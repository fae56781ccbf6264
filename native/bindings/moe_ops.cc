// N-API face of the mixture-of-experts load-balancing loss with its gradient (native/ops/moe.h) and the
// routing time; the sparse block itself runs through runOp (native/core/op_table_vision.cc).
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

// moeAuxLoss(logits [L*T*E], cuSeqlens, options {tokens, experts, topK, layers}) -> {loss: number[] per
// sequence, dLogits [L*T*E]: d(sum of the losses)/d(logits)}.
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
  const int64_t S = static_cast<int64_t>(cu.length) - 1;
  std::vector<double> counts(S * s.E), sums(S * s.E);
  std::vector<float> probs(L * s.T * s.E), weights(s.T * s.K), dlogits(L * s.T * s.E);
  std::vector<int32_t> experts(s.T * s.K), order(s.T * s.K), offsets(s.E + 1);
  for (int64_t l = 0; l < L; ++l) {
    float* p = probs.data() + l * s.T * s.E;
    cpu::moe_route_forward(p, experts.data(), weights.data(), order.data(), offsets.data(), logits.data + l * s.T * s.E,
                           s);
    cpu::moe_load_accumulate(counts.data(), sums.data(), p, experts.data(), cu.data, S, s);
  }
  for (int64_t l = 0; l < L; ++l)
    cpu::moe_aux_backward(dlogits.data() + l * s.T * s.E, probs.data() + l * s.T * s.E, counts.data(), cu.data, S, L,
                          1.0f, s);
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
