// STUB: replaced by the real implementation
#include "loss.h"
#include "../core/error.h"

namespace medix::cpu {

double aggregate(const float* values, const TokenBatch& b, const AggSpec& agg, float* weight) { fail("loss: stub"); }

PolicyLossMetrics policy_loss(const PolicyLossInputs& in, const TokenBatch& b, const PolicyLossConfig& cfg,
                              float* dlogp, float* dentropy) { fail("loss: stub"); }

float kl_value(KlEstimator e, float logp, float ref_logp, float* dkl_dlogp) { fail("loss: stub"); }

double sft_loss(const float* logp, const TokenBatch& b, const AggSpec& agg, float* dlogp) { fail("loss: stub"); }

}  // namespace medix::cpu
