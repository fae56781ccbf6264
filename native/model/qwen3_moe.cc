// The sparse (mixture-of-experts) MLP block of a Qwen3-MoE layer, for training and cached inference,
// and the load statistics behind the load-balancing loss (native/ops/moe.h has the op semantics). In bf16
// compute the router and the experts read the bf16 compute copy, as the dense projections do.
#include <vector>

#include "qwen3.h"
#include "qwen3_internal.h"

namespace medix {

MoeShape Qwen3Model::moe_shape(int64_t T) const {
  return MoeShape{T, cfg_.hidden, cfg_.moe_intermediate, cfg_.experts, cfg_.experts_per_token, cfg_.norm_topk_prob};
}

void Qwen3Model::moe_mlp_forward(int64_t l, Acts& a, float* out, int64_t T) {
  const MoeShape s = moe_shape(T);
  const Layer w = layer_view(weights_, l);
  linear(a.router_logits, a.xn2, w.gate, T, s.H, s.E);
  be_.run<MoeRouteForward>(a.probs, a.route_experts, a.route_w, a.route_order, a.route_offsets, a.router_logits, s);
  if (dtype_ == ComputeDType::bf16)
    be_.run<MoeExpertsForwardBf16>(out, a.moe_gate, a.moe_up, a.moe_y, a.xn2, compute_copy(w.up), compute_copy(w.down),
                                   a.route_w, a.route_order, a.route_offsets, s);
  else
    be_.run<MoeExpertsForward>(out, a.moe_gate, a.moe_up, a.moe_y, a.xn2, w.up, w.down, a.route_w, a.route_order,
                               a.route_offsets, s);
}

void Qwen3Model::moe_mlp_backward(int64_t l, const float* dout, float* dxn, Acts& a, int64_t T) {
  const MoeShape s = moe_shape(T);
  const Layer w = layer_view(weights_, l);
  const Layer g = layer_view(grads_, l);
  if (dtype_ == ComputeDType::bf16)
    be_.run<MoeExpertsBackwardBf16>(dxn, g.up, g.down, a.moe_dw, dout, a.xn2, compute_copy(w.up), compute_copy(w.down),
                                    a.route_w, a.route_order, a.route_offsets, a.moe_gate, a.moe_up, a.moe_y, s);
  else
    be_.run<MoeExpertsBackward>(dxn, g.up, g.down, a.moe_dw, dout, a.xn2, w.up, w.down, a.route_w, a.route_order,
                                a.route_offsets, a.moe_gate, a.moe_up, a.moe_y, s);
  be_.zero(a.moe_dlogits, T * s.E);
  be_.run<MoeRouteBackward>(a.moe_dlogits, a.moe_dw, a.probs, a.route_experts, a.route_w, s);
  // The picks of every sparse layer of the forward set the aux loss's gradient with respect to p.
  if (aux_weight_ != 0)
    be_.run<MoeAuxBackward>(a.moe_dlogits, a.probs, moe_counts_.data(), cu_.data(),
                            static_cast<int64_t>(cu_.size()) - 1, cfg_.sparse_layers(), aux_weight_, s);
  linear_back(dxn, g.gate, a.moe_dlogits, a.xn2, w.gate, T, s.H, s.E);
}

void Qwen3Model::moe_record(int64_t l, const Acts& a, bool keep_logits) {
  const int64_t T = static_cast<int64_t>(tokens_.size());
  const MoeShape s = moe_shape(T);
  std::vector<float> probs(T * s.E);
  std::vector<int32_t> experts(T * s.K), offsets(s.E + 1);
  be_.to_host(probs.data(), a.probs, sizeof(float) * probs.size());
  be_.to_host(experts.data(), a.route_experts, sizeof(int32_t) * experts.size());
  be_.to_host(offsets.data(), a.route_offsets, sizeof(int32_t) * offsets.size());
  cpu::moe_load_accumulate(moe_counts_.data(), moe_prob_sums_.data(), probs.data(), experts.data(), cu_.data(),
                           static_cast<int64_t>(cu_.size()) - 1, s);
  int64_t k = 0;  // this layer's index among the sparse layers
  for (int64_t j = 0; j < l; ++j) k += cfg_.is_sparse(j);
  for (int64_t e = 0; e < s.E; ++e) moe_load_[k * s.E + e] = offsets[e + 1] - offsets[e];
  if (keep_logits) be_.to_host(moe_router_logits_.data() + k * T * s.E, a.router_logits, sizeof(float) * T * s.E);
}

std::vector<double> Qwen3Model::aux_losses() const {
  std::vector<double> out;
  if (cfg_.experts <= 0 || moe_counts_.empty()) return out;
  const int64_t E = cfg_.experts;
  for (size_t q = 0; q + 1 < cu_.size(); ++q)
    out.push_back(cpu::moe_aux_loss(moe_counts_.data() + q * E, moe_prob_sums_.data() + q * E, cu_[q + 1] - cu_[q],
                                    cfg_.sparse_layers(), E));
  return out;
}

}  // namespace medix
