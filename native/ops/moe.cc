// Mixture-of-experts routing, experts and load-balancing loss (see moe.h).
#include "moe.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <vector>

#include "../core/error.h"
#include "../core/threads.h"
#include "linear.h"
#include "swiglu.h"
#include "../core/op_table_dsl.h"

namespace medix::cpu {
namespace {

std::atomic<int64_t> routing_ns{0};

// Adds the wall time of its scope to routing_ns.
class RoutingTimer {
 public:
  RoutingTimer() : start_(std::chrono::steady_clock::now()) {}
  ~RoutingTimer() {
    const auto elapsed = std::chrono::steady_clock::now() - start_;
    routing_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
  }
  RoutingTimer(const RoutingTimer&) = delete;
  RoutingTimer& operator=(const RoutingTimer&) = delete;

 private:
  std::chrono::steady_clock::time_point start_;
};

// Where each assignment a = t*K + k sits in `order`.
std::vector<int32_t> positions_of(const int32_t* order, int64_t n) {
  std::vector<int32_t> pos(static_cast<size_t>(n));
  for (int64_t r = 0; r < n; ++r) pos[order[r]] = static_cast<int32_t>(r);
  return pos;
}

// Rows of x picked by the assignments order[r0..r1) (token = assignment / K), packed.
void gather_rows(float* dst, const float* x, const int32_t* order, int64_t r0, int64_t r1, int64_t K, int64_t H) {
  parallel_for(
      r1 - r0,
      [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r) std::copy_n(x + (order[r0 + r] / K) * H, H, dst + r * H);
      },
      std::max<int64_t>(1, 4096 / H));
}

// linear.h's product on f32 weights or on their bf16 compute copy, chosen by the weights' type.
void product(float* y, const float* x, const float* W, int64_t T, int64_t in, int64_t out) {
  linear_forward(y, x, W, nullptr, T, in, out);
}
void product(float* y, const float* x, const uint16_t* W, int64_t T, int64_t in, int64_t out) {
  linear_forward_bf16(y, x, W, nullptr, T, in, out);
}
void product_back(float* dx, float* dW, const float* dy, const float* x, const float* W, int64_t T, int64_t in,
                  int64_t out) {
  linear_backward(dx, dW, nullptr, dy, x, W, T, in, out);
}
void product_back(float* dx, float* dW, const float* dy, const float* x, const uint16_t* W, int64_t T, int64_t in,
                  int64_t out) {
  linear_backward_bf16(dx, dW, nullptr, dy, x, W, T, in, out);
}

template <typename Weight>
void experts_forward(float* out, float* gate, float* up, float* y, const float* x, const Weight* gate_up,
                     const Weight* down, const float* weights, const int32_t* order, const int32_t* offsets,
                     const MoeShape& s) {
  const int64_t H = s.H, I = s.I, K = s.K, n = s.T * K;
  std::vector<float> xs(static_cast<size_t>(n * H)), act(static_cast<size_t>(n * I));
  {
    const RoutingTimer timer;
    gather_rows(xs.data(), x, order, 0, n, K, H);
  }
  for (int64_t e = 0; e < s.E; ++e) {
    const int64_t r0 = offsets[e], rows = offsets[e + 1] - r0;
    if (rows == 0) continue;
    const Weight* wg = gate_up + e * 2 * I * H;
    const float* xe = xs.data() + r0 * H;
    product(gate + r0 * I, xe, wg, rows, H, I);
    product(up + r0 * I, xe, wg + I * H, rows, H, I);
    swiglu_forward(act.data() + r0 * I, gate + r0 * I, up + r0 * I, rows * I);
    product(y + r0 * H, act.data() + r0 * I, down + e * H * I, rows, I, H);
  }
  const RoutingTimer timer;  // the combination per token
  const std::vector<int32_t> pos = positions_of(order, n);
  parallel_for(
      s.T,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          float* o = out + t * H;
          std::fill(o, o + H, 0.0f);
          for (int64_t k = 0; k < K; ++k) {
            const float w = weights[t * K + k];
            const float* yr = y + int64_t(pos[t * K + k]) * H;
            for (int64_t h = 0; h < H; ++h) o[h] += w * yr[h];
          }
        }
      },
      std::max<int64_t>(1, 4096 / H));
}

template <typename Weight>
void experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout, const float* x,
                      const Weight* gate_up, const Weight* down, const float* weights, const int32_t* order,
                      const int32_t* offsets, const float* gate, const float* up, const float* y, const MoeShape& s) {
  const int64_t H = s.H, I = s.I, K = s.K, n = s.T * K;
  // Per sorted position: the token's input row, and dy = w * dout of its token.
  std::vector<float> xs(static_cast<size_t>(n * H)), dys(static_cast<size_t>(n * H)), dxs(static_cast<size_t>(n * H));
  {
    const RoutingTimer timer;
    gather_rows(xs.data(), x, order, 0, n, K, H);
    gather_rows(dys.data(), dout, order, 0, n, K, H);
    parallel_for(
        n,
        [&](int64_t b, int64_t e) {
          for (int64_t r = b; r < e; ++r) {
            const float w = weights[order[r]];
            for (int64_t h = 0; h < H; ++h) dys[r * H + h] *= w;
          }
        },
        std::max<int64_t>(1, 4096 / H));
  }
  std::vector<float> act(static_cast<size_t>(n * I)), dact(static_cast<size_t>(n * I)), dg(static_cast<size_t>(n * I)),
      du(static_cast<size_t>(n * I));
  for (int64_t e = 0; e < s.E; ++e) {
    const int64_t r0 = offsets[e], rows = offsets[e + 1] - r0;
    if (rows == 0) continue;
    const Weight* wg = gate_up + e * 2 * I * H;
    float* dwg = dgate_up + e * 2 * I * H;
    const float* xe = xs.data() + r0 * H;
    swiglu_forward(act.data() + r0 * I, gate + r0 * I, up + r0 * I, rows * I);
    product_back(dact.data() + r0 * I, ddown + e * H * I, dys.data() + r0 * H, act.data() + r0 * I, down + e * H * I,
                 rows, I, H);
    swiglu_backward(dg.data() + r0 * I, du.data() + r0 * I, dact.data() + r0 * I, gate + r0 * I, up + r0 * I, rows * I);
    product_back(dxs.data() + r0 * H, dwg, dg.data() + r0 * I, xe, wg, rows, H, I);
    product_back(dxs.data() + r0 * H, dwg + I * H, du.data() + r0 * I, xe, wg + I * H, rows, H, I);
  }
  const RoutingTimer timer;  // the scatter back per token and the routing weights' gradient
  const std::vector<int32_t> pos = positions_of(order, n);
  parallel_for(
      s.T,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const float* g = dout + t * H;
          for (int64_t k = 0; k < K; ++k) {
            const int64_t r = pos[t * K + k];
            const float* yr = y + r * H;
            double d = 0;
            for (int64_t h = 0; h < H; ++h) d += double(g[h]) * yr[h];
            dweights[t * K + k] = static_cast<float>(d);
            const float* dxr = dxs.data() + r * H;
            for (int64_t h = 0; h < H; ++h) dx[t * H + h] += dxr[h];
          }
        }
      },
      std::max<int64_t>(1, 4096 / H));
}

}  // namespace

void moe_route_forward(float* probs, int32_t* experts, float* weights, int32_t* order, int32_t* offsets,
                       const float* logits, const MoeShape& s) {
  const RoutingTimer timer;
  const int64_t E = s.E, K = s.K;
  parallel_for(
      s.T,
      [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const float* x = logits + t * E;
          float* p = probs + t * E;
          const float mx = *std::max_element(x, x + E);
          double sum = 0;
          for (int64_t e = 0; e < E; ++e) sum += (p[e] = std::exp(x[e] - mx));
          for (int64_t e = 0; e < E; ++e) p[e] = static_cast<float>(p[e] / sum);
          // Top-K by repeated selection: K is small, and ties go to the lower index.
          double picked = 0;
          for (int64_t k = 0; k < K; ++k) {
            int32_t best = -1;
            for (int64_t e = 0; e < E; ++e) {
              bool taken = false;
              for (int64_t j = 0; j < k; ++j) taken |= experts[t * K + j] == e;
              if (!taken && (best < 0 || p[e] > p[best])) best = static_cast<int32_t>(e);
            }
            experts[t * K + k] = best;
            weights[t * K + k] = p[best];
            picked += p[best];
          }
          if (s.norm_topk)
            for (int64_t k = 0; k < K; ++k) weights[t * K + k] = static_cast<float>(weights[t * K + k] / picked);
        }
      },
      64);
  // Stable counting sort of the assignments by expert.
  std::fill(offsets, offsets + E + 1, 0);
  const int64_t n = s.T * K;
  for (int64_t a = 0; a < n; ++a) ++offsets[experts[a] + 1];
  for (int64_t e = 0; e < E; ++e) offsets[e + 1] += offsets[e];
  std::vector<int32_t> next(offsets, offsets + E);
  for (int64_t a = 0; a < n; ++a) order[next[experts[a]]++] = static_cast<int32_t>(a);
}

void moe_route_backward(float* dlogits, const float* dweights, const float* probs, const int32_t* experts,
                        const float* weights, const MoeShape& s) {
  const RoutingTimer timer;
  const int64_t E = s.E, K = s.K;
  parallel_for(
      s.T,
      [&](int64_t t0, int64_t t1) {
        std::vector<double> dp(static_cast<size_t>(E));
        for (int64_t t = t0; t < t1; ++t) {
          const float* p = probs + t * E;
          const float* dw = dweights + t * K;
          const float* w = weights + t * K;
          const int32_t* ex = experts + t * K;
          std::fill(dp.begin(), dp.end(), 0.0);
          if (s.norm_topk) {
            // w_k = p_k / S with S = sum_j p_j: dp_k = (dw_k - sum_j dw_j w_j) / S.
            double picked = 0, dot = 0;
            for (int64_t k = 0; k < K; ++k) picked += p[ex[k]], dot += double(dw[k]) * w[k];
            for (int64_t k = 0; k < K; ++k) dp[ex[k]] = (dw[k] - dot) / picked;
          } else {
            for (int64_t k = 0; k < K; ++k) dp[ex[k]] = dw[k];
          }
          // Softmax: dlogit_e = p_e (dp_e - sum_j p_j dp_j).
          double mean = 0;
          for (int64_t k = 0; k < K; ++k) mean += p[ex[k]] * dp[ex[k]];
          for (int64_t e = 0; e < E; ++e) dlogits[t * E + e] += static_cast<float>(p[e] * (dp[e] - mean));
        }
      },
      64);
}

void moe_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const float* gate_up,
                         const float* down, const float* weights, const int32_t* order, const int32_t* offsets,
                         const MoeShape& s) {
  experts_forward(out, gate, up, y, x, gate_up, down, weights, order, offsets, s);
}

void moe_experts_forward_bf16(float* out, float* gate, float* up, float* y, const float* x, const uint16_t* gate_up,
                              const uint16_t* down, const float* weights, const int32_t* order, const int32_t* offsets,
                              const MoeShape& s) {
  experts_forward(out, gate, up, y, x, gate_up, down, weights, order, offsets, s);
}

void moe_experts_backward(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout, const float* x,
                          const float* gate_up, const float* down, const float* weights, const int32_t* order,
                          const int32_t* offsets, const float* gate, const float* up, const float* y,
                          const MoeShape& s) {
  experts_backward(dx, dgate_up, ddown, dweights, dout, x, gate_up, down, weights, order, offsets, gate, up, y, s);
}

void moe_experts_backward_bf16(float* dx, float* dgate_up, float* ddown, float* dweights, const float* dout,
                               const float* x, const uint16_t* gate_up, const uint16_t* down, const float* weights,
                               const int32_t* order, const int32_t* offsets, const float* gate, const float* up,
                               const float* y, const MoeShape& s) {
  experts_backward(dx, dgate_up, ddown, dweights, dout, x, gate_up, down, weights, order, offsets, gate, up, y, s);
}

double moe_experts_bf16_factor(const MoeShape& s, double gate_max) {
  constexpr double f32_unit = 1.0 / 16777216, a = 1.1;
  const double n = static_cast<double>(std::max({s.H, 2 * s.I, s.T, s.K}) + 1);
  const double e = 2 * n * f32_unit + 8 * f32_unit;
  MEDIX_CHECK(e * gate_max <= 1.0 / 64, "moe_experts_bf16_factor: the bound needs e Gmax <= 1/64, got ", e * gate_max);
  return (8 * a + 2 + gate_max) * e * (1 + 1.0 / 32);
}

double moe_gate_magnitude_max(const float* x, const float* gate_up, const MoeShape& s) {
  double best = 0;
  for (int64_t e = 0; e < s.E; ++e)
    for (int64_t i = 0; i < s.I; ++i) {
      const float* w = gate_up + (e * 2 * s.I + i) * s.H;
      for (int64_t t = 0; t < s.T; ++t) {
        double sum = 0;
        for (int64_t h = 0; h < s.H; ++h) sum += std::fabs(double(x[t * s.H + h])) * std::fabs(double(w[h]));
        best = std::max(best, sum);
      }
    }
  return best;
}

void moe_load_accumulate(double* counts, double* prob_sums, const float* probs, const int32_t* experts,
                         const int32_t* cu, int64_t n_seqs, const MoeShape& s) {
  for (int64_t q = 0; q < n_seqs; ++q)
    for (int64_t t = cu[q]; t < cu[q + 1]; ++t) {
      for (int64_t k = 0; k < s.K; ++k) counts[q * s.E + experts[t * s.K + k]] += 1;
      for (int64_t e = 0; e < s.E; ++e) prob_sums[q * s.E + e] += probs[t * s.E + e];
    }
}

double moe_aux_loss(const double* counts, const double* prob_sums, int64_t tokens, int64_t layers, int64_t E) {
  const double n = double(tokens) * double(layers);
  if (n == 0) return 0;
  double sum = 0;
  for (int64_t e = 0; e < E; ++e) sum += (counts[e] / n) * (prob_sums[e] / n);
  return double(E) * sum;
}

void moe_aux_backward(float* dlogits, const float* probs, const double* counts, const int32_t* cu, int64_t n_seqs,
                      int64_t layers, float scale, const MoeShape& s) {
  const int64_t E = s.E;
  for (int64_t q = 0; q < n_seqs; ++q) {
    const double n = double(cu[q + 1] - cu[q]) * double(layers);
    if (n == 0) continue;
    // d aux / d p_e = E f_e / n (the same for every row of the sequence), then the softmax backward.
    std::vector<double> c(static_cast<size_t>(E));
    for (int64_t e = 0; e < E; ++e) c[e] = double(scale) * double(E) * counts[q * E + e] / (n * n);
    parallel_for(
        cu[q + 1] - cu[q],
        [&](int64_t b, int64_t end) {
          for (int64_t t = cu[q] + b; t < cu[q] + end; ++t) {
            const float* p = probs + t * E;
            double mean = 0;
            for (int64_t e = 0; e < E; ++e) mean += p[e] * c[e];
            for (int64_t e = 0; e < E; ++e) dlogits[t * E + e] += static_cast<float>(p[e] * (c[e] - mean));
          }
        },
        64);
  }
}

double moe_routing_seconds_take() { return static_cast<double>(routing_ns.exchange(0)) * 1e-9; }

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(MoeRouteForward, cpu::moe_route_forward);
MEDIX_CPU_OP(MoeRouteBackward, cpu::moe_route_backward);
MEDIX_CPU_OP(MoeExpertsForward, cpu::moe_experts_forward);
MEDIX_CPU_OP(MoeExpertsBackward, cpu::moe_experts_backward);
MEDIX_CPU_OP(MoeExpertsForwardBf16, cpu::moe_experts_forward_bf16);
MEDIX_CPU_OP(MoeExpertsBackwardBf16, cpu::moe_experts_backward_bf16);
MEDIX_CPU_OP(MoeAuxBackward, cpu::moe_aux_backward);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
// The mixture-of-experts block: logits = x router^T, top-k routing, experts. Backward recomputes the
// forward, then returns the gradient of sum(dout * out). Then the experts alone, with the expert weights
// in the entry's dtype: f32, or bf16 (a compute copy; the *_bf16 functions). The routing comes from the
// f32 router logits given (softmax, top-k), so both entries route alike: routing is discontinuous and no
// bf16 tolerance covers a changed pick (the router's own bf16 form is the linear op's). Backward
// recomputes the forward and returns the gradients of sum(dout * out) with respect to x and the expert
// weights, and dWeights, the routing weights' (moe_block carries that on to the router).
namespace medix::op_decl {
namespace {

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
  OpDef d = family("moe_block", op_ids<LinearForward, MoeRouteForward, MoeExpertsForward, MoeExpertsBackward,
                                       MoeRouteBackward, LinearBackward>());
  d.forward = {"moeBlockForward", fwd, attrs, check, [](Backend& be, const Attrs& a, const Tensors& t) {
                 const MoeShape s = moe_shape(a);
                 MoeRun r(be, s);
                 moe_forward(be, s, t, r);
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"moeBlockBackward", bwd, attrs, check, [](Backend& be, const Attrs& a, const Tensors& t) {
                  const MoeShape s = moe_shape(a);
                  const int64_t TK = s.T * s.K;
                  BackendArray<float> out(be, s.T * s.H), logits(be, s.T * s.E), probs(be, s.T * s.E), w(be, TK),
                      dweights(be, TK), dlogits(be, s.T * s.E);
                  BackendArray<int32_t> experts(be, TK), order(be, TK), offsets(be, s.E + 1);
                  Tensors f = t;
                  const auto on = [&be](void* p, DType dtype) { return Tensor{p, 0, dtype, &be}; };
                  f.t["out"] = on(out.get(), DType::F32), f.t["routerLogits"] = on(logits.get(), DType::F32);
                  f.t["probs"] = on(probs.get(), DType::F32), f.t["weights"] = on(w.get(), DType::F32);
                  f.t["experts"] = on(experts.get(), DType::I32), f.t["order"] = on(order.get(), DType::I32);
                  f.t["offsets"] = on(offsets.get(), DType::I32);
                  MoeRun r(be, s);
                  moe_forward(be, s, f, r);
                  be.run<MoeExpertsBackward>(t.f("dx"), t.f("dGateUp"), t.f("dDown"), dweights.get(), t.f("dout"),
                                             t.f("x"), t.f("gateUp"), t.f("down"), w.get(), order.get(), offsets.get(),
                                             r.gate.get(), r.up.get(), r.y.get(), s);
                  be.run<MoeRouteBackward>(dlogits.get(), dweights.get(), probs.get(), experts.get(), w.get(), s);
                  be.run<LinearBackward>(t.f("dx"), t.f("dRouter"), nullptr, dlogits.get(), t.f("x"), t.f("router"),
                                         s.T, s.H, s.E);
                  return 0.0;
                }};
  return d;
}

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
  OpDef d = family("moe_experts",
                   bf16 ? op_ids<MoeRouteForward, MoeExpertsForwardBf16, MoeExpertsBackwardBf16>()
                        : op_ids<MoeRouteForward, MoeExpertsForward, MoeExpertsBackward>(),
                   dtype);
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

MEDIX_OP_TABLE_ENTRY(moe_block);
MEDIX_OP_TABLE_ENTRY(moe_experts_f32);
MEDIX_OP_TABLE_ENTRY(moe_experts_bf16);

}  // namespace medix::op_decl
