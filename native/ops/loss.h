// Token-level losses of RL and SFT, forward and backward in one call (they are cheap; the expensive
// part, d(loss)/d(logp) -> model, goes through logprob_backward).
//
// All inputs are per token over a packed batch of response tokens; cu_seqlens delimits sequences
// (needed by the sequence-level aggregations and by GSPO). mask is 1 for tokens that count.
#pragma once
#include <cstdint>

namespace medix {

enum class LossAgg { TokenMean = 0, SeqMeanTokenMean = 1, SeqMeanTokenSum = 2 };
enum class PolicyLossKind { PPO = 0, GSPO = 1, CISPO = 2 };
enum class KlEstimator { None = 0, K1 = 1, Abs = 2, Mse = 3, LowVarKl = 4 };

struct TokenBatch {
  int64_t T = 0;
  const int32_t* cu_seqlens = nullptr;  // [n_seqs + 1]
  int64_t n_seqs = 0;
  const float* mask = nullptr;  // [T] in {0, 1}
};

// How token values are reduced to one number. Normalisers let gradient accumulation over
// micro-batches reproduce the mean over a whole mini-batch: token_mean divides by global_tokens
// and the seq-mean modes by global_seqs when those are > 0 (else by this batch's own counts).
struct AggSpec {
  LossAgg mode = LossAgg::TokenMean;
  double global_tokens = 0;
  double global_seqs = 0;
};

struct PolicyLossConfig {
  PolicyLossKind kind = PolicyLossKind::PPO;
  AggSpec agg;
  float clip_low = 0.2f;   // ratio lower bound 1 - clip_low
  float clip_high = 0.2f;  // ratio upper bound 1 + clip_high (DAPO clip-higher: 0.28)
  float dual_clip = 0.0f;  // c > 1 enables dual-clip for negative advantages; 0 disables
  KlEstimator kl = KlEstimator::None;
  float kl_coef = 0.0f;
  float entropy_coef = 0.0f;
};

struct PolicyLossInputs {
  const float* logp = nullptr;        // [T] current policy
  const float* old_logp = nullptr;    // [T] behaviour policy (rollout)
  const float* ref_logp = nullptr;    // [T] reference policy, needed when kl != None
  const float* advantages = nullptr;  // [T]
  const float* entropy = nullptr;     // [T], needed when entropy_coef != 0
};

struct PolicyLossMetrics {
  double loss = 0;  // total: pg_loss + kl_coef*kl_loss - entropy_coef*entropy
  double pg_loss = 0;
  double kl_loss = 0;             // aggregated KL estimate (0 when kl == None)
  double entropy = 0;             // aggregated entropy (0 when not given)
  double pg_clipfrac_higher = 0;  // token fraction where the upper clip is active
  double pg_clipfrac_lower = 0;   // token fraction where the dual clip is active
  double ppo_kl = 0;              // token mean of old_logp - logp
  double tokens = 0;              // masked-in tokens in this batch
};

namespace cpu {

// Reduces values[T] and writes weight[t] = d(result)/d(values[t]) (weight may be null).
// A batch with no masked-in tokens reduces to 0 with zero weights.
double aggregate(const float* values, const TokenBatch& b, const AggSpec& agg, float* weight);

// Writes dlogp[T] (and dentropy[T] when entropy is given) = d(loss)/d(input), overwriting them.
PolicyLossMetrics policy_loss(const PolicyLossInputs& in, const TokenBatch& b, const PolicyLossConfig& cfg,
                              float* dlogp, float* dentropy);

// Per-token KL estimate of kl(pi || ref) from logp and ref_logp, and its derivative wrt logp.
float kl_value(KlEstimator e, float logp, float ref_logp, float* dkl_dlogp);

// SFT: loss = aggregate(-logp); writes dlogp (overwrites).
double sft_loss(const float* logp, const TokenBatch& b, const AggSpec& agg, float* dlogp);

}  // namespace cpu
}  // namespace medix
