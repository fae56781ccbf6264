// N-API face of the mixture-of-experts ops (native/ops/moe.h) for tests: one sparse block run whole
// (router linear, routing, experts), its backward, and the load-balancing loss with its gradient.
// Synchronous; arguments are checked before any memory is touched.
#include <cstdint>
#include <string>
#include <vector>

#include "../ops/linear.h"
#include "../ops/moe.h"
#include "registry.h"

namespace medix::bindings {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 20;
const bool kFinite = true;

MoeShape shape_of(const Napi::Object& o, const std::string& fn) {
  MoeShape s;
  s.T = js::integer(o, "tokens", fn, 0, kMaxDim);
  s.H = js::integer(o, "hidden", fn, 1, kMaxDim);
  s.I = js::integer(o, "intermediate", fn, 1, kMaxDim);
  s.E = js::integer(o, "experts", fn, 1, 4096);
  s.K = js::integer(o, "topK", fn, 1, s.E);
  s.norm_topk = js::boolean_or(o, "normTopk", fn, true);
  return s;
}

Napi::Int32Array new_i32(Napi::Env env, const std::vector<int32_t>& v) {
  auto a = Napi::Int32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), a.Data());
  return a;
}

// Saved routing and expert activations of one block.
struct BlockRun {
  std::vector<float> logits, probs, weights, gate, up, y, out;
  std::vector<int32_t> experts, order, offsets;
};

BlockRun run_block(const float* x, const float* router, const float* gate_up, const float* down, const MoeShape& s) {
  BlockRun r;
  const int64_t TK = s.T * s.K;
  r.logits.resize(s.T * s.E);
  r.probs.resize(s.T * s.E);
  r.weights.resize(TK);
  r.experts.resize(TK);
  r.order.resize(TK);
  r.offsets.resize(s.E + 1);
  r.gate.resize(TK * s.I);
  r.up.resize(TK * s.I);
  r.y.resize(TK * s.H);
  r.out.resize(s.T * s.H);
  cpu::linear_forward(r.logits.data(), x, router, nullptr, s.T, s.H, s.E);
  cpu::moe_route_forward(r.probs.data(), r.experts.data(), r.weights.data(), r.order.data(), r.offsets.data(),
                         r.logits.data(), s);
  cpu::moe_experts_forward(r.out.data(), r.gate.data(), r.up.data(), r.y.data(), x, gate_up, down, r.weights.data(),
                           r.order.data(), r.offsets.data(), s);
  return r;
}

struct BlockArgs {
  MoeShape s;
  js::View<float> x, router, gate_up, down;
};

// (x, router, gateUp, down, options) at positions first..first+4.
BlockArgs block_args(const Napi::CallbackInfo& info, int first, const std::string& fn) {
  BlockArgs a;
  a.s = shape_of(js::object(info[first + 4], fn, "options"), fn);
  const MoeShape& s = a.s;
  a.x = js::f32(info[first], fn, "x", s.T * s.H, "tokens*hidden", kFinite);
  a.router = js::f32(info[first + 1], fn, "router", s.E * s.H, "experts*hidden", kFinite);
  a.gate_up = js::f32(info[first + 2], fn, "gateUp", s.E * 2 * s.I * s.H, "experts*2*intermediate*hidden", kFinite);
  a.down = js::f32(info[first + 3], fn, "down", s.E * s.H * s.I, "experts*hidden*intermediate", kFinite);
  return a;
}

// moeBlockForward(x, router, gateUp, down, options) -> {out, routerLogits, probs, experts, weights, order, offsets}
Napi::Value MoeBlockForward(const Napi::CallbackInfo& info) {
  const BlockArgs a = block_args(info, 0, "moeBlockForward");
  BlockRun r = run_block(a.x.data, a.router.data, a.gate_up.data, a.down.data, a.s);
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("out", js::new_f32(env, r.out.data(), r.out.size()));
  o.Set("routerLogits", js::new_f32(env, r.logits.data(), r.logits.size()));
  o.Set("probs", js::new_f32(env, r.probs.data(), r.probs.size()));
  o.Set("weights", js::new_f32(env, r.weights.data(), r.weights.size()));
  o.Set("experts", new_i32(env, r.experts));
  o.Set("order", new_i32(env, r.order));
  o.Set("offsets", new_i32(env, r.offsets));
  return o;
}

// moeBlockBackward(dout, x, router, gateUp, down, options) -> {dx, dRouter, dGateUp, dDown}: the
// gradient of sum(dout * out), forward recomputed first.
Napi::Value MoeBlockBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "moeBlockBackward";
  const BlockArgs a = block_args(info, 1, fn);
  const MoeShape& s = a.s;
  auto dout = js::f32(info[0], fn, "dout", s.T * s.H, "tokens*hidden", kFinite);
  BlockRun r = run_block(a.x.data, a.router.data, a.gate_up.data, a.down.data, s);
  std::vector<float> dx(s.T * s.H), drouter(s.E * s.H), dgu(s.E * 2 * s.I * s.H), ddown(s.E * s.H * s.I);
  std::vector<float> dweights(s.T * s.K), dlogits(s.T * s.E);
  cpu::moe_experts_backward(dx.data(), dgu.data(), ddown.data(), dweights.data(), dout.data, a.x.data, a.gate_up.data,
                            a.down.data, r.weights.data(), r.order.data(), r.offsets.data(), r.gate.data(), r.up.data(),
                            r.y.data(), s);
  cpu::moe_route_backward(dlogits.data(), dweights.data(), r.probs.data(), r.experts.data(), r.weights.data(), s);
  cpu::linear_backward(dx.data(), drouter.data(), nullptr, dlogits.data(), a.x.data, a.router.data, s.T, s.H, s.E);
  Napi::Env env = info.Env();
  auto o = Napi::Object::New(env);
  o.Set("dx", js::new_f32(env, dx.data(), dx.size()));
  o.Set("dRouter", js::new_f32(env, drouter.data(), drouter.size()));
  o.Set("dGateUp", js::new_f32(env, dgu.data(), dgu.size()));
  o.Set("dDown", js::new_f32(env, ddown.data(), ddown.size()));
  return o;
}

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
  exports.Set("moeBlockForward", Napi::Function::New(env, MoeBlockForward, "moeBlockForward"));
  exports.Set("moeBlockBackward", Napi::Function::New(env, MoeBlockBackward, "moeBlockBackward"));
  exports.Set("moeAuxLoss", Napi::Function::New(env, MoeAuxLoss, "moeAuxLoss"));
}

}  // namespace medix::bindings
