// STUB: replaced by the real implementation
#include "logprob.h"
#include "../core/error.h"

namespace medix::cpu {

size_t logprob_forward(float* logp, float* entropy, float* lse, const float* hidden, const float* head,
                       const int32_t* targets, const LogprobShape& s) { fail("logprob: stub"); }

size_t logprob_backward(float* dhidden, float* dhead, const float* dlogp, const float* dentropy,
                        const float* hidden, const float* head, const int32_t* targets, const float* lse,
                        const float* entropy, const LogprobShape& s) { fail("logprob: stub"); }

}  // namespace medix::cpu
