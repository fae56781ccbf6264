// Sparse mixture-of-experts block as Hugging Face defines it for qwen3_moe / qwen3_vl_moe:
//   logits = x Wr^T (a linear op), p = softmax(logits), the K most probable experts per token with
//   weights w = their p (renormalised to sum 1 when norm_topk), and
//   out[t] = sum_k w[t,k] * down_e(silu(gate_e x_t) * up_e x_t),  e = experts[t,k].
// Expert weights are stacked: gate_up [E, 2I, H] (rows 0..I-1 gate, I..2I-1 up), down [E, H, I].
//
// Assignments a = t*K + k are grouped by expert with a stable counting sort (order, offsets), so
// each expert runs one GEMM over its tokens and the result never depends on the thread count.
// Outputs are combined per token in slot order (a gather, no racing scatter).
//
// The load-balancing loss is transformers' load_balancing_loss_func for one sequence over its L
// sparse layers (N = L*T_s router rows): aux = E * sum_e f_e * P_e, f_e = (number of top-K picks of
// expert e)/N, P_e = (sum of p_e)/N. The picks are not differentiable, so d aux/d p_e = E f_e / N.
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

namespace medix {

struct MoeShape {
  int64_t T = 0;  // tokens
  int64_t H = 0;  // hidden size
  int64_t I = 0;  // expert intermediate size (moe_intermediate_size)
  int64_t E = 0;  // experts
  int64_t K = 0;  // experts per token
  bool norm_topk = true;
};
template <>
struct PointerFree<MoeShape> : std::true_type {};  // backend_op.h

namespace cpu {

// probs[T,E], experts[T,K] (descending probability; ties: lower index first), weights[T,K],
// order[T*K] (assignments sorted by expert, stable), offsets[E+1] (expert e's run in order).
void moe_route_forward(float* probs, int32_t* experts, float* weights, int32_t* order, int32_t* offsets,
                       const float* logits, const MoeShape& s);
// dlogits[T,E] += d/dlogits of sum dweights*weights.
void moe_route_backward(float* dlogits, const float* dweights, const float* probs, const int32_t* experts,
                        const float* weights, const MoeShape& s);

// out[T,H] = (overwritten) the weighted expert outputs. Saves, per position r of `order`: gate[r,I],
// up[r,I] (the two projections) and y[r,H] (the expert's unweighted output) for backward.
void moe_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const float* gate_up,
                         const float* down, const float* weights, const int32_t* order, const int32_t* offsets,
                         const MoeShape& s);
// dx[T,H] += ..., dgate_up += ..., ddown += ...; dweights[T,K] = (overwritten) <dout[t], y of (t,k)>.
void moe_experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout, const float* x,
                          const float* gate_up, const float* down, const float* weights, const int32_t* order,
                          const int32_t* offsets, const float* gate, const float* up, const float* y,
                          const MoeShape& s);

// The same with the experts' weights in bf16 (a model's compute copy; core/bf16.h) through linear.h's *_bf16
// products: f32 activations and sums, so on bf16-valued weights these are the f32 ops to the order of
// the f32 sums. The gradients dgate_up and ddown stay f32 (the master weights').
void moe_experts_forward_bf16(float* out, float* gate, float* up, float* y, const float* x, const uint16_t* gate_up,
                              const uint16_t* down, const float* weights, const int32_t* order, const int32_t* offsets,
                              const MoeShape& s);
void moe_experts_backward_bf16(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout,
                               const float* x, const uint16_t* gate_up, const uint16_t* down, const float* weights,
                               const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                               const float* y, const MoeShape& s);

// How far the bf16 experts may be from the f32 experts run on the widened bf16 weights (the same values,
// summed in another order), for the routing the router chose (the routing is an input: it is
// discontinuous, so no bound covers a changed pick). Let e = 2 gamma_n + 8 2^-24: gamma_n = n 2^-24 the f32
// error of a sum of n terms (n = max(H, 2I, T, K) + 1, the longest reduction: dx adds the gate and up
// products, 2I terms), 8 2^-24 SwiGLU's own f32 rounding on both sides (a few ulps each). Capitals are the f32 ops run
// on magnitudes (|x|, |gate_up|, |down|, |dout|, the same routing): G, U the projections, A = silu(G) U, and so on.
// Since G >= 0, silu(G) >= G/2 and silu'(G) >= 1/2, while |silu'| <= a = 1.1 and |silu''| <= 1/2 everywhere, so
//   gate, up:  |dg| <= e G;  act = silu(g) up: |d act| <= (1 + a) e G U <= 2(1 + a) e A, |act| <= 2A;
//   y:  <= (4 + 2a) e Y (the act error through |down|, plus e |act| |down| of the product itself);
//   out, dweights = <dout, y>:  <= (6 + 2a) e of their magnitude form (sums over k or h);
//   d act = dy down:  <= e DA;  d gate = d act up silu'(g):  <= e DA U (2a + G/2) <= e (4a + G) DG;
//   d up = d act silu(g):  <= 2(1 + a) e DU;  dx, d gate_up:  <= (6a + G) e of theirs;  d down: (4 + 2a) e;
//   each plus a few gamma_n from the sums over slots (2a 2 gamma_n at most).
// So every output of either pass is within factor * (its magnitude form), factor = (8a + 2 + Gmax) e
// (1 + 1/32), the last factor for the second-order terms (at most e Gmax of the first-order ones, which
// the function requires to be under 1/64). Against the unrounded weights
// the same steps hold with u = 2^-8 added to e, but the magnitude forms pile up the cancellation of
// three products (about sqrt(n) each), and at Qwen3 widths that bound exceeds the values themselves.
double moe_experts_bf16_factor(const MoeShape& s, double gate_max);
// Gmax above: the largest sum_h |x[t,h]| |gate_up[e,i,h]| over tokens t, experts e and gate rows i.
double moe_gate_magnitude_max(const float* x, const float* gate_up, const MoeShape& s);

// Adds one layer to the per-sequence load statistics: counts[S,E] += top-K picks, prob_sums[S,E] +=
// p, sequence s being tokens [cu[s], cu[s+1]).
void moe_load_accumulate(double* counts, double* prob_sums, const float* probs, const int32_t* experts,
                         const int32_t* cu, int64_t n_seqs, const MoeShape& s);
// The load-balancing loss of one sequence from its statistics over `layers` layers of `tokens` rows.
double moe_aux_loss(const double* counts, const double* prob_sums, int64_t tokens, int64_t layers, int64_t E);
// dlogits[T,E] += scale * d(sum_s aux_s)/d(this layer's logits), from the statistics of the forward.
void moe_aux_backward(float* dlogits, const float* probs, const double* counts, const int32_t* cu, int64_t n_seqs,
                      int64_t layers, float scale, const MoeShape& s);

// Wall seconds the calls above spent routing since the last call (then restarts from 0): softmax and
// top-k with their backward, the sort by expert, the gathers of rows by expert and the combination
// back per token (with the routing weights' gradient). Not the GEMMs, nor SwiGLU. For the benchmark's
// routing share of a step; a few clock reads per layer, so always on.
double moe_routing_seconds_take();

}  // namespace cpu

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct MoeRouteForward : BackendOp<MoeRouteForward, decltype(cpu::moe_route_forward)> {
  static constexpr const char* name = "moe_route_forward";
  static constexpr OpKind kind = OpKind::Moe;
  static constexpr OpArg args[] = {{"probs"}, {"experts"}, {"weights"}, {"order"}, {"offsets"}, {"logits"}, {"s"}};
};
struct MoeRouteBackward : BackendOp<MoeRouteBackward, decltype(cpu::moe_route_backward)> {
  static constexpr const char* name = "moe_route_backward";
  static constexpr OpKind kind = OpKind::Moe;
  static constexpr OpArg args[] = {{"dlogits"}, {"dweights"}, {"probs"}, {"experts"}, {"weights"}, {"s"}};
};
struct MoeExpertsForward : BackendOp<MoeExpertsForward, decltype(cpu::moe_experts_forward)> {
  static constexpr const char* name = "moe_experts_forward";
  static constexpr OpKind kind = OpKind::Moe;
  static constexpr OpArg args[] = {{"out"},  {"gate"},    {"up"},    {"y"},       {"x"}, {"gate_up"},
                                   {"down"}, {"weights"}, {"order"}, {"offsets"}, {"s"}};
};
struct MoeExpertsBackward : BackendOp<MoeExpertsBackward, decltype(cpu::moe_experts_backward)> {
  static constexpr const char* name = "moe_experts_backward";
  static constexpr OpKind kind = OpKind::Moe;
  static constexpr OpArg args[] = {{"dx"},      {"dgate_up"}, {"ddown"}, {"dweights"}, {"dout"},
                                   {"x"},       {"gate_up"},  {"down"},  {"weights"},  {"order"},
                                   {"offsets"}, {"gate"},     {"up"},    {"y"},        {"s"}};
};
struct MoeExpertsForwardBf16 : BackendOp<MoeExpertsForwardBf16, decltype(cpu::moe_experts_forward_bf16)> {
  static constexpr const char* name = "moe_experts_forward_bf16";
  static constexpr OpKind kind = OpKind::Moe;
  static constexpr OpArg args[] = {{"out"},  {"gate"},    {"up"},    {"y"},       {"x"}, {"gate_up"},
                                   {"down"}, {"weights"}, {"order"}, {"offsets"}, {"s"}};
};
struct MoeExpertsBackwardBf16 : BackendOp<MoeExpertsBackwardBf16, decltype(cpu::moe_experts_backward_bf16)> {
  static constexpr const char* name = "moe_experts_backward_bf16";
  static constexpr OpKind kind = OpKind::Moe;
  static constexpr OpArg args[] = {{"dx"},      {"dgate_up"}, {"ddown"}, {"dweights"}, {"dout"},
                                   {"x"},       {"gate_up"},  {"down"},  {"weights"},  {"order"},
                                   {"offsets"}, {"gate"},     {"up"},    {"y"},        {"s"}};
};
struct MoeAuxBackward : BackendOp<MoeAuxBackward, decltype(cpu::moe_aux_backward)> {
  static constexpr const char* name = "moe_aux_backward";
  static constexpr OpKind kind = OpKind::Moe;
  static constexpr OpArg args[] = {{"dlogits"}, {"probs"},  host_arg("counts"), host_arg("cu"),
                                   {"n_seqs"},  {"layers"}, {"scale"},          {"s"}};
};

}  // namespace medix
