// The op table's vision-tower entries (LayerNorm, GELU, 2D rotary, interpolated position embedding;
// the patch embedding is the linear op), the mixture-of-experts block (router linear, routing, experts,
// as the sparse layer runs them) and the experts alone in f32 and bf16. Semantics: native/ops/<family>.h.
#include <initializer_list>
#include <utility>

#include "../ops/gelu.h"
#include "../ops/layernorm.h"
#include "../ops/linear.h"
#include "../ops/moe.h"
#include "../ops/vision_grid.h"
#include "../ops/vision_pos_embed.h"
#include "../ops/vision_rope.h"
#include "error.h"
#include "op_table_dsl.h"

namespace medix::op_decl {
namespace {

using Lengths = std::map<std::string, int64_t>;

OpDef layernorm() {
  const std::vector<AttrSpec> shape = {integer("rows", 1, kMaxTokens), integer("dim", 1, kMaxDim)};
  std::vector<AttrSpec> fwd_attrs = shape;
  fwd_attrs.push_back(number("eps"));
  OpDef d = family("layernorm");
  d.forward = {"layernormForward",
               {in("x", "rows*dim"), in("w", "dim"), in("b", "dim"), out("out", "rows*dim"), out("mean", "rows"),
                out("rstd", "rows")},
               fwd_attrs,
               [](Attrs& a, const Lengths&) { MEDIX_CHECK(a.f("eps") > 0, "option 'eps' must be > 0"); },
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<LayernormForward>(t.f("out"), t.f("mean"), t.f("rstd"), t.f("x"), t.f("w"), t.f("b"),
                                          a.i("rows"), a.i("dim"), static_cast<float>(a.f("eps")));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"layernormBackward",
                {in("dout", "rows*dim"), in("x", "rows*dim"), in("w", "dim"), in("mean", "rows"), in("rstd", "rows"),
                 out("dx", "rows*dim"), out("dw", "dim"), out("db", "dim")},
                shape,
                nullptr,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<LayernormBackward>(t.f("dx"), t.f("dw"), t.f("db"), t.f("dout"), t.f("x"), t.f("w"),
                                            t.f("mean"), t.f("rstd"), a.i("rows"), a.i("dim"));
                  return 0.0;
                }};
  return d;
}

cpu::GeluKind gelu_kind(const Attrs& a) { return a.i("kind") == 0 ? cpu::GeluKind::kTanh : cpu::GeluKind::kErf; }

OpDef gelu() {
  const std::vector<AttrSpec> attrs = {choice_or("kind", {"tanh", "erf"}, 0)};
  OpDef d = family("gelu");
  d.forward = {"geluForward",
               {in("x", ""), out("out", "x.length")},
               attrs,
               nullptr,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<GeluForward>(t.f("out"), t.f("x"), t.n("x"), gelu_kind(a));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"geluBackward",
                {in("dout", "x.length"), in("x", ""), out("dx", "x.length")},
                attrs,
                nullptr,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<GeluBackward>(t.f("dx"), t.f("dout"), t.f("x"), t.n("x"), gelu_kind(a));
                  return 0.0;
                }};
  return d;
}

OpDef vision_rope() {
  const std::vector<AttrSpec> attrs = {integer("T", 1, kMaxTokens), integer("heads", 1, kMaxHeads),
                                       integer("headDim", 4, 65536), number_or("theta", 10000.0)};
  auto check = [](Attrs& a, const Lengths&) {
    MEDIX_CHECK(a.i("headDim") % 4 == 0, "option 'headDim' must be a multiple of 4");
  };
  OpDef d = family("vision_rope");
  d.forward = {"visionRopeForward",
               {in("x", "T*heads*headDim"), positions("coords", "2*T"), out("out", "T*heads*headDim")},
               attrs,
               check,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<VisionRopeForward>(t.f("out"), t.f("x"), t.i("coords"), a.i("T"), a.i("heads"), a.i("headDim"),
                                           static_cast<float>(a.f("theta")));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"visionRopeBackward",
                {in("dout", "T*heads*headDim"), positions("coords", "2*T"), out("dx", "T*heads*headDim")},
                attrs,
                check,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<VisionRopeBackward>(t.f("dx"), t.f("dout"), t.i("coords"), a.i("T"), a.i("heads"),
                                             a.i("headDim"), static_cast<float>(a.f("theta")));
                  return 0.0;
                }};
  return d;
}

// Grids (t, h, w triples) are an option: host data that sets the patch count.
std::vector<ImageGrid> grids_of(const Attrs& a) {
  const std::vector<int64_t>* g = a.list("grids");
  const std::vector<int32_t> g32 = g ? std::vector<int32_t>(g->begin(), g->end()) : std::vector<int32_t>{};
  return image_grids(g32.data(), static_cast<int64_t>(g32.size()), a.i("merge"));
}

OpDef vision_pos_embed() {
  const std::vector<AttrSpec> attrs = {integer("merge", 1, 64), integer("side", 1, 65536), integer("dim", 1, kMaxDim),
                                       list_opt("grids")};
  auto patches = [](Attrs& a, const Lengths&) { a.num["patches"] = static_cast<double>(patch_count(grids_of(a))); };
  OpDef d = family("vision_pos_embed");
  d.forward = {"visionPosEmbedForward",
               {in("table", "side*side*dim"), out("out", "patches*dim")},
               attrs,
               patches,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<VisionPosEmbedForward>(t.f("out"), t.f("table"), grids_of(a), a.i("merge"), a.i("side"),
                                               a.i("dim"));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"visionPosEmbedBackward",
                {in("dout", "patches*dim"), out("dtable", "side*side*dim")},
                attrs,
                patches,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<VisionPosEmbedBackward>(t.f("dtable"), t.f("dout"), grids_of(a), a.i("merge"), a.i("side"),
                                                 a.i("dim"));
                  return 0.0;
                }};
  return d;
}

// ---------------------------------------------------------------------------------------------
// Mixture-of-experts block: logits = x router^T, top-k routing, experts. Backward recomputes the
// forward, then returns the gradient of sum(dout * out).

MoeShape moe_shape(const Attrs& a) {
  MoeShape s;
  s.T = a.i("tokens");
  s.H = a.i("hidden");
  s.I = a.i("intermediate");
  s.E = a.i("experts");
  s.K = a.i("topK");
  s.norm_topk = a.b("normTopk");
  return s;
}

int64_t expert_offsets(const Attrs& a, std::string* desc) {
  *desc = "experts+1";
  return a.i("experts") + 1;
}

// The forward's saved routing and activations, in backend memory owned for the call.
struct MoeRun {
  BackendArray<float> gate, up, y;
  MoeRun(Backend& be, const MoeShape& s) : gate(be, s.T * s.K * s.I), up(be, s.T * s.K * s.I), y(be, s.T * s.K * s.H) {}
};

void moe_forward(Backend& be, const MoeShape& s, const Tensors& t, MoeRun& r) {
  be.run<LinearForward>(t.f("routerLogits"), t.f("x"), t.f("router"), nullptr, s.T, s.H, s.E);
  be.run<MoeRouteForward>(t.f("probs"), t.i("experts"), t.f("weights"), t.i("order"), t.i("offsets"),
                          t.f("routerLogits"), s);
  be.run<MoeExpertsForward>(t.f("out"), r.gate.get(), r.up.get(), r.y.get(), t.f("x"), t.f("gateUp"), t.f("down"),
                            t.f("weights"), t.i("order"), t.i("offsets"), s);
}

std::vector<AttrSpec> moe_attrs() {
  return {integer("tokens", 0, 1 << 20), integer("hidden", 1, 1 << 20), integer("intermediate", 1, 1 << 20),
          integer("experts", 1, 4096),   integer("topK", 1, 4096),      boolean_or("normTopk", true)};
}

void moe_check(Attrs& a, const Lengths&) {
  MEDIX_CHECK(a.i("topK") <= a.i("experts"), "option 'topK' must be an integer in [1, ", a.i("experts"), "], got ",
              a.i("topK"));
}

OpDef moe_block() {
  const std::vector<AttrSpec> attrs = moe_attrs();
  const auto check = moe_check;
  const std::vector<ArgSpec> weights = {in("x", "tokens*hidden"), in("router", "experts*hidden"),
                                        in("gateUp", "experts*2*intermediate*hidden"),
                                        in("down", "experts*hidden*intermediate")};
  ArgSpec offsets_out = out_i32("offsets", "");
  offsets_out.length_fn = expert_offsets;
  std::vector<ArgSpec> fwd = weights;
  for (ArgSpec s :
       {out("out", "tokens*hidden"), out("routerLogits", "tokens*experts"), out("probs", "tokens*experts"),
        out("weights", "tokens*topK"), out_i32("experts", "tokens*topK"), out_i32("order", "tokens*topK"), offsets_out})
    fwd.push_back(s);
  std::vector<ArgSpec> bwd = {in("dout", "tokens*hidden")};
  for (const ArgSpec& s : weights) bwd.push_back(s);
  for (ArgSpec s : {out("dx", "tokens*hidden"), out("dRouter", "experts*hidden"),
                    out("dGateUp", "experts*2*intermediate*hidden"), out("dDown", "experts*hidden*intermediate")})
    bwd.push_back(s);
  OpDef d = family("moe_block", {"cpu", "cuda"});
  d.forward = {"moeBlockForward", fwd, attrs, check, [](Backend& be, const Attrs& a, const Tensors& t) {
                 const MoeShape s = moe_shape(a);
                 MoeRun r(be, s);
                 moe_forward(be, s, t, r);
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {
      "moeBlockBackward", bwd, attrs, check, [](Backend& be, const Attrs& a, const Tensors& t) {
        const MoeShape s = moe_shape(a);
        const int64_t TK = s.T * s.K;
        BackendArray<float> out(be, s.T * s.H), logits(be, s.T * s.E), probs(be, s.T * s.E), w(be, TK),
            dweights(be, TK), dlogits(be, s.T * s.E);
        BackendArray<int32_t> experts(be, TK), order(be, TK), offsets(be, s.E + 1);
        Tensors f = t;
        for (auto [name, p] : std::initializer_list<std::pair<const char*, void*>>{{"out", out.get()},
                                                                                   {"routerLogits", logits.get()},
                                                                                   {"probs", probs.get()},
                                                                                   {"weights", w.get()},
                                                                                   {"experts", experts.get()},
                                                                                   {"order", order.get()},
                                                                                   {"offsets", offsets.get()}})
          f.t[name] = {p, 0};
        MoeRun r(be, s);
        moe_forward(be, s, f, r);
        be.run<MoeExpertsBackward>(t.f("dx"), t.f("dGateUp"), t.f("dDown"), dweights.get(), t.f("dout"), t.f("x"),
                                   t.f("gateUp"), t.f("down"), w.get(), order.get(), offsets.get(), r.gate.get(),
                                   r.up.get(), r.y.get(), s);
        be.run<MoeRouteBackward>(dlogits.get(), dweights.get(), probs.get(), experts.get(), w.get(), s);
        be.run<LinearBackward>(t.f("dx"), t.f("dRouter"), nullptr, dlogits.get(), t.f("x"), t.f("router"), s.T, s.H,
                               s.E);
        return 0.0;
      }};
  return d;
}

// ---------------------------------------------------------------------------------------------
// The experts alone, with the expert weights in the entry's dtype: f32, or bf16 (a compute copy; moe.h's
// *_bf16). The routing comes from the f32 router logits given (softmax, top-k), so both entries route
// alike: routing is discontinuous and no bf16 tolerance covers a changed pick (the router's own bf16
// form is the linear op's). Backward recomputes the forward and returns the gradients of sum(dout * out)
// with respect to x and the expert weights, and dWeights, the routing weights' (moe_block carries that
// on to the router).

// The routing of the logits, in backend memory owned for the call.
struct MoeRoute {
  BackendArray<float> probs, weights;
  BackendArray<int32_t> experts, order, offsets;
  MoeRoute(Backend& be, const MoeShape& s, const float* logits)
      : probs(be, s.T * s.E),
        weights(be, s.T * s.K),
        experts(be, s.T * s.K),
        order(be, s.T * s.K),
        offsets(be, s.E + 1) {
    be.run<MoeRouteForward>(probs.get(), experts.get(), weights.get(), order.get(), offsets.get(), logits, s);
  }
};

void experts_forward(Backend& be, DType dtype, float* out, MoeRun& r, const MoeRoute& route, const Tensors& t,
                     const MoeShape& s) {
  if (dtype == DType::BF16)
    be.run<MoeExpertsForwardBf16>(out, r.gate.get(), r.up.get(), r.y.get(), t.f("x"), t.h("gateUp"), t.h("down"),
                                  route.weights.get(), route.order.get(), route.offsets.get(), s);
  else
    be.run<MoeExpertsForward>(out, r.gate.get(), r.up.get(), r.y.get(), t.f("x"), t.f("gateUp"), t.f("down"),
                              route.weights.get(), route.order.get(), route.offsets.get(), s);
}

template <DType dtype>
double experts_backward_run(Backend& be, const Attrs& a, const Tensors& t) {
  const MoeShape s = moe_shape(a);
  const MoeRoute route(be, s, t.f("routerLogits"));
  MoeRun r(be, s);
  BackendArray<float> out(be, s.T * s.H);
  experts_forward(be, dtype, out.get(), r, route, t, s);
  if (dtype == DType::BF16)
    be.run<MoeExpertsBackwardBf16>(t.f("dx"), t.f("dGateUp"), t.f("dDown"), t.f("dWeights"), t.f("dout"), t.f("x"),
                                   t.h("gateUp"), t.h("down"), route.weights.get(), route.order.get(),
                                   route.offsets.get(), r.gate.get(), r.up.get(), r.y.get(), s);
  else
    be.run<MoeExpertsBackward>(t.f("dx"), t.f("dGateUp"), t.f("dDown"), t.f("dWeights"), t.f("dout"), t.f("x"),
                               t.f("gateUp"), t.f("down"), route.weights.get(), route.order.get(), route.offsets.get(),
                               r.gate.get(), r.up.get(), r.y.get(), s);
  return 0.0;
}

template <DType dtype>
double experts_forward_run(Backend& be, const Attrs& a, const Tensors& t) {
  const MoeShape s = moe_shape(a);
  const MoeRoute route(be, s, t.f("routerLogits"));
  MoeRun r(be, s);
  experts_forward(be, dtype, t.f("out"), r, route, t, s);
  return 0.0;
}

OpDef moe_experts(DType dtype) {
  const bool bf16 = dtype == DType::BF16;
  const std::vector<ArgSpec> inputs = {in("x", "tokens*hidden"), in("routerLogits", "tokens*experts"),
                                       typed(in("gateUp", "experts*2*intermediate*hidden"), dtype),
                                       typed(in("down", "experts*hidden*intermediate"), dtype)};
  std::vector<ArgSpec> fwd = inputs;
  fwd.push_back(out("out", "tokens*hidden"));
  std::vector<ArgSpec> bwd = {in("dout", "tokens*hidden")};
  for (const ArgSpec& s : inputs) bwd.push_back(s);
  for (ArgSpec s : {out("dx", "tokens*hidden"), out("dGateUp", "experts*2*intermediate*hidden"),
                    out("dDown", "experts*hidden*intermediate"), out("dWeights", "tokens*topK")})
    bwd.push_back(s);
  OpDef d = family("moe_experts", {"cpu", "cuda"}, dtype);
  d.forward = {bf16 ? "moeExpertsForwardBf16" : "moeExpertsForward", fwd, moe_attrs(), moe_check,
               bf16 ? experts_forward_run<DType::BF16> : experts_forward_run<DType::F32>};
  d.has_backward = true;
  d.backward = {bf16 ? "moeExpertsBackwardBf16" : "moeExpertsBackward", bwd, moe_attrs(), moe_check,
                bf16 ? experts_backward_run<DType::BF16> : experts_backward_run<DType::F32>};
  return d;
}
OpDef moe_experts_f32() { return moe_experts(DType::F32); }
OpDef moe_experts_bf16() { return moe_experts(DType::BF16); }

}  // namespace

void add_vision_and_moe_ops(std::vector<OpDef>& table) {
  for (OpDef (*make)() : {layernorm, gelu, vision_rope, vision_pos_embed, moe_block, moe_experts_f32, moe_experts_bf16})
    table.push_back(make());
}

}  // namespace medix::op_decl
