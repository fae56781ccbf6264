// AdamW over flat float32 buffers and the gradient utilities around it. Every element is updated
// independently, so the work is split with parallel_for; the one reduction (sum of squares) goes
// over fixed chunks so its result does not depend on the thread count.
#include "adamw.h"

#include <cmath>
#include <sstream>
#include <vector>

#include "../core/error.h"
#include "../core/threads.h"
#include "../core/op_table_dsl.h"

namespace medix {

namespace {

void check_in(const char* key, double x, double lo, double hi, bool hi_open) {
  if (x < lo || x > hi || (hi_open && x == hi)) {
    std::ostringstream os;
    os << "option '" << key << "' must be in [" << lo << ", " << hi << (hi_open ? ")" : "]") << ", got " << x;
    throw Error(os.str());
  }
}

}  // namespace

void check_adamw_config(const AdamWConfig& c) {
  MEDIX_CHECK(c.lr >= 0, "option 'lr' must be >= 0");
  check_in("beta1", c.beta1, 0.0, 1.0, true);
  check_in("beta2", c.beta2, 0.0, 1.0, true);
  MEDIX_CHECK(c.eps > 0, "option 'eps' must be > 0");
  check_in("eps", c.eps, 0.0, 1e6, false);
  check_in("weightDecay", c.weight_decay, 0.0, 1e6, false);
}

}  // namespace medix

namespace medix::cpu {
namespace {

constexpr int64_t kMinChunk = 16384;  // elements per task: enough to amortise the dispatch
constexpr int64_t kLanes = 8;         // independent partial sums, so the double adds can pipeline

// Sum of squares of g[0, n) in double: lane k adds elements k, k + 8, ..., then lanes in order.
double chunk_sum_squares(const float* g, int64_t n) {
  double lane[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int64_t k = 0; k < kLanes; ++k) lane[k] += static_cast<double>(g[i + k]) * g[i + k];
  for (; i < n; ++i) lane[0] += static_cast<double>(g[i]) * g[i];
  double s = 0.0;
  for (int64_t k = 0; k < kLanes; ++k) s += lane[k];
  return s;
}

}  // namespace

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t step,
                bool decay) {
  MEDIX_CHECK(step >= 1, "adamw_step: step must be >= 1, got ", step);
  const float b1 = cfg.beta1, b2 = cfg.beta2, eps = cfg.eps;
  const float shrink = decay ? static_cast<float>(1.0 - static_cast<double>(cfg.lr) * cfg.weight_decay) : 1.0f;
  // Bias corrections as torch computes them: step_size = lr / (1 - b1^t), and the second moment
  // enters as sqrt(v) / sqrt(1 - b2^t).
  const double bc1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(step));
  const double bc2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(step));
  const float step_size = static_cast<float>(cfg.lr / bc1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const float gi = g[i];
          const float mi = b1 * m[i] + (1.0f - b1) * gi;
          const float vi = b2 * v[i] + (1.0f - b2) * (gi * gi);
          m[i] = mi;
          v[i] = vi;
          // Decoupled weight decay first (on the old parameter), then the Adam step.
          p[i] = p[i] * shrink - step_size * (mi / (std::sqrt(vi) / bc2_sqrt + eps));
        }
      },
      kMinChunk);
}

double sum_squares(const float* g, int64_t n) {
  const int64_t chunks = fixed_chunks(n, kMinChunk);
  std::vector<double> partial(static_cast<size_t>(chunks), 0.0);
  parallel_for(chunks, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const int64_t b = c * n / chunks, e = (c + 1) * n / chunks;
      partial[c] = chunk_sum_squares(g + b, e - b);
    }
  });
  double s = 0.0;
  for (double x : partial) s += x;  // chunk order: independent of the thread count
  return s;
}

void scale_inplace(float* g, float s, int64_t n) {
  parallel_for(
      n,
      [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) g[i] *= s;
      },
      kMinChunk);
}

}  // namespace medix::cpu

namespace medix {
// The CPU backend's ops (core/backend_op.h).
MEDIX_CPU_OP(AdamwStep, cpu::adamw_step);
MEDIX_CPU_OP(SumSquares, cpu::sum_squares);
MEDIX_CPU_OP(ScaleInplace, cpu::scale_inplace);
}  // namespace medix

// The op table's entries (core/op_registry.h): arguments with their shape and value rules, options,
// checks, and the call through a Backend.
// The optimizer: updates in place. Defaults are AdamWConfig's.
namespace medix::op_decl {
namespace {

AdamWConfig adamw_config(const Attrs& a) {
  AdamWConfig c;
  c.lr = static_cast<float>(a.f("lr"));
  c.beta1 = static_cast<float>(a.f("beta1"));
  c.beta2 = static_cast<float>(a.f("beta2"));
  c.eps = static_cast<float>(a.f("eps"));
  c.weight_decay = static_cast<float>(a.f("weightDecay"));
  return c;
}

OpDef adamw() {
  const AdamWConfig dflt;
  OpDef d = family("adamw", op_ids<AdamwStep>());
  d.forward = {
      "adamwStep",
      {inout("p", ""), in("g", "p.length"), inout("m", "p.length"), inout("v", "p.length", Values::NonNegative)},
      {number("lr"), number_or("beta1", dflt.beta1), number_or("beta2", dflt.beta2), number_or("eps", dflt.eps),
       number_or("weightDecay", dflt.weight_decay), integer("step", 1, 9007199254740992.0), boolean_or("decay", true)},
      [](Attrs& a, const Lengths&) { check_adamw_config(adamw_config(a)); },
      [](Backend& be, const Attrs& a, const Tensors& t) {
        be.run<AdamwStep>(t.f("p"), t.f("g"), t.f("m"), t.f("v"), t.n("p"), adamw_config(a), a.i("step"), a.b("decay"));
        return 0.0;
      }};
  return d;
}

// The gradient norm's parts: sum of squares in double (+Inf/NaN when g holds one), and scaling.
OpDef sum_squares() {
  OpDef d = family("sum_squares", op_ids<SumSquares>());
  d.forward = {"sumSquares",
               {{"g", DType::F32, Role::In, "", Values::Any}},
               {},
               nullptr,
               [](Backend& be, const Attrs&, const Tensors& t) { return be.run<SumSquares>(t.f("g"), t.n("g")); }};
  return d;
}

OpDef scale() {
  OpDef d = family("scale", op_ids<ScaleInplace>());
  d.forward = {"scaleInPlace",
               {inout("g", "", Values::Any)},
               {number("s")},
               nullptr,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<ScaleInplace>(t.f("g"), static_cast<float>(a.f("s")), t.n("g"));
                 return 0.0;
               }};
  return d;
}

}  // namespace

MEDIX_OP_TABLE_ENTRY(adamw);
MEDIX_OP_TABLE_ENTRY(sum_squares);
MEDIX_OP_TABLE_ENTRY(scale);

}  // namespace medix::op_decl
