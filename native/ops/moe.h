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

namespace medix {

struct MoeShape {
  int64_t T = 0;  // tokens
  int64_t H = 0;  // hidden size
  int64_t I = 0;  // expert intermediate size (moe_intermediate_size)
  int64_t E = 0;  // experts
  int64_t K = 0;  // experts per token
  bool norm_topk = true;
};

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
}  // namespace medix
