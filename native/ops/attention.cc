// STUB: replaced by the real implementation
#include "attention.h"
#include "../core/error.h"

namespace medix::cpu {

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v,
                       const AttentionShape& s) { fail("attention: stub"); }

void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const AttentionShape& s) { fail("attention: stub"); }

}  // namespace medix::cpu
