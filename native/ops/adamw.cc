// STUB: replaced by the real implementation
#include "adamw.h"
#include "../core/error.h"

namespace medix::cpu {

void adamw_step(float* p, const float* g, float* m, float* v, int64_t n, const AdamWConfig& cfg, int64_t step,
                bool decay) { fail("adamw: stub"); }

double sum_squares(const float* g, int64_t n) { fail("adamw: stub"); }

void scale_inplace(float* g, float s, int64_t n) { fail("adamw: stub"); }

}  // namespace medix::cpu
