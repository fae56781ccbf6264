// AdamW (decoupled weight decay, bias correction) over flat parameter buffers, and the gradient
// utilities around it (global norm, clipping, non-finite detection).
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

namespace medix {

// The defaults are torch.optim.AdamW's; src/engine/adamw-defaults.ts holds the same for TypeScript.
struct AdamWConfig {
  float lr = 1e-6f;
  float beta1 = 0.9f, beta2 = 0.999f;
  float eps = 1e-8f;
  float weight_decay = 1e-2f;
};
template <>
struct PointerFree<AdamWConfig> : std::true_type {};  // backend_op.h

// Throws medix::Error naming the first hyperparameter out of range: lr >= 0, beta1 and beta2 in
// [0, 1), eps in (0, 1e6], weight_decay in [0, 1e6]. Every caller that takes a config checks it here.
void check_adamw_config(const AdamWConfig& c);

namespace cpu {

// One step over n elements, step >= 1 (used for bias correction). decay is 0 or 1: whether weight
// decay applies to this buffer. Order as in torch.optim.AdamW: p *= 1 - lr*wd, then the Adam update.
void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t step,
                bool decay);

// Sum of squares, accumulated in double over fixed chunks: same result for any thread count.
// Returns +inf/NaN if any element is non-finite.
double sum_squares(const float* g, int64_t n);

void scale_inplace(float* g, float s, int64_t n);

}  // namespace cpu

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct AdamwStep : BackendOp<AdamwStep, decltype(cpu::adamw_step)> {
  static constexpr const char* name = "adamw_step";
  static constexpr OpKind kind = OpKind::Optimizer;
  static constexpr OpArg args[] = {{"p"}, {"g"}, {"m"}, {"v"}, {"n"}, {"cfg"}, {"step"}, {"decay"}};
};
struct SumSquares : BackendOp<SumSquares, decltype(cpu::sum_squares)> {
  static constexpr const char* name = "sum_squares";
  static constexpr OpKind kind = OpKind::Optimizer;
  static constexpr OpArg args[] = {{"g"}, {"n"}};
};
struct ScaleInplace : BackendOp<ScaleInplace, decltype(cpu::scale_inplace)> {
  static constexpr const char* name = "scale_inplace";
  static constexpr OpKind kind = OpKind::Optimizer;
  static constexpr OpArg args[] = {{"g"}, {"s"}, {"n"}};
};

}  // namespace medix
