// Token-level RL and SFT losses: value, metrics and d(loss)/d(logp) (and d(loss)/d(entropy)) in one
// pass. These are O(T) over at most a few hundred thousand tokens, far cheaper than the log-prob
// head that produced logp, so they run on one thread: plain loops, sums in double, deterministic.
//
// Every aggregation mode is linear in the token values: result = sum_t weight_t * x_t, with weights
// that depend only on the mask, the sequence boundaries and the normalisers. So the weights are
// computed once per call and serve the value (a dot product) and the gradient (d result / d x_t).
#include "loss.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "../core/cu_seqlens.h"
#include "../core/error.h"

namespace medix::cpu {
namespace {

constexpr double kMaxLogRatio = 20.0;     // PPO/CISPO log-ratio clamp: exp(20) ~ 5e8 stays finite
constexpr double kMaxSeqLogRatio = 10.0;  // GSPO sequence log-ratio upper clamp
constexpr double kMaxLowVarKl = 10.0;     // low_var_kl value clamp

double clamp(double x, double lo, double hi) { return std::min(std::max(x, lo), hi); }

void check_batch(const TokenBatch& b, const char* fn) {
  MEDIX_CHECK(b.T >= 0 && b.n_seqs >= 0 && b.mask, fn, ": bad token batch");
  check_cu_seqlens(b.cu_seqlens, b.n_seqs + 1, b.T, fn, "cu_seqlens");
}

// weight[t] = d(aggregate)/d(x_t):
//   token-mean:            mask_t / N_tok
//   seq-mean-token-mean:   mask_t / (N_seq * sum of the mask over t's sequence)
//   seq-mean-token-sum:    mask_t / N_seq
// N_tok = global_tokens or this batch's mask sum; N_seq = global_seqs or the number of sequences with
// a masked-in token. Nothing masked in: all weights 0 (no division by 0).
std::vector<double> aggregation_weights(const TokenBatch& b, const AggSpec& agg) {
  std::vector<double> w(static_cast<size_t>(b.T), 0.0);
  if (agg.mode == LossAgg::TokenMean) {
    double n = 0.0;
    for (int64_t t = 0; t < b.T; ++t) n += b.mask[t];
    if (agg.global_tokens > 0) n = agg.global_tokens;
    if (n > 0)
      for (int64_t t = 0; t < b.T; ++t) w[t] = b.mask[t] / n;
    return w;
  }
  std::vector<double> seq_mask(static_cast<size_t>(b.n_seqs), 0.0);
  double n_seq = 0.0;
  for (int64_t i = 0; i < b.n_seqs; ++i) {
    for (int32_t t = b.cu_seqlens[i]; t < b.cu_seqlens[i + 1]; ++t) seq_mask[i] += b.mask[t];
    if (seq_mask[i] > 0) n_seq += 1.0;
  }
  if (agg.global_seqs > 0) n_seq = agg.global_seqs;
  for (int64_t i = 0; i < b.n_seqs; ++i) {
    if (!(seq_mask[i] > 0)) continue;
    const double per_token = agg.mode == LossAgg::SeqMeanTokenMean ? 1.0 / (n_seq * seq_mask[i]) : 1.0 / n_seq;
    for (int32_t t = b.cu_seqlens[i]; t < b.cu_seqlens[i + 1]; ++t) w[t] = b.mask[t] * per_token;
  }
  return w;
}

// sum_t w_t x_t for x a float pointer or a double vector.
template <typename Values>
double weighted_sum(const std::vector<double>& w, const Values& x) {
  double s = 0.0;
  for (size_t t = 0; t < w.size(); ++t)
    if (w[t] != 0.0) s += w[t] * x[t];  // skipping masked-out tokens keeps whatever they hold out
  return s;
}

// Per-token policy-gradient term of one kind: loss value, d loss / d logp, the indicators behind the
// clip-fraction metrics, and the log-ratio behind ppo_kl.
struct TokenTerms {
  std::vector<double> loss, dloss, clip_higher, clip_lower, log_ratio;
  explicit TokenTerms(int64_t T)
      : loss(T, 0.0), dloss(T, 0.0), clip_higher(T, 0.0), clip_lower(T, 0.0), log_ratio(T, 0.0) {}
};

// The clipped surrogate max(-A r, -A clip(r, lo, hi)) for one token, given the ratio r and its
// derivative dr = d r / d logp. Writes the value and derivative of the active branch and returns
// whether the clipped branch is the strictly larger one. That happens only where clip(r) != r, i.e.
// r outside [lo, hi], where clip(r) is constant: the clipped branch never carries a gradient.
bool clipped_surrogate(double A, double r, double dr, double lo, double hi, double* l, double* dl) {
  const double loss1 = -A * r;
  const double loss2 = -A * clamp(r, lo, hi);
  if (loss1 >= loss2) {
    *l = loss1;
    *dl = -A * dr;
    return false;
  }
  *l = loss2;
  *dl = 0.0;
  return true;
}

// PPO: r = exp(clamp(logp - old_logp, +-20)), the clipped surrogate (clipping r to [1 - clip_low,
// 1 + clip_high] equals clipping the log-ratio to the logs of those bounds), and the optional dual
// clip min(l, -A c) for negative advantages.
void ppo_terms(const PolicyLossInputs& in, const TokenBatch& b, const PolicyLossConfig& cfg, TokenTerms& out) {
  const double lo = 1.0 - cfg.clip_low, hi = 1.0 + cfg.clip_high;
  for (int64_t t = 0; t < b.T; ++t) {
    const double raw = static_cast<double>(in.logp[t]) - in.old_logp[t];
    const double delta = clamp(raw, -kMaxLogRatio, kMaxLogRatio);
    const double A = in.advantages[t];
    const double r = std::exp(delta);
    const double dr = std::abs(raw) < kMaxLogRatio ? r : 0.0;  // no gradient through the +-20 clamp
    double l, dl;
    out.clip_higher[t] = clipped_surrogate(A, r, dr, lo, hi, &l, &dl) ? 1.0 : 0.0;
    if (cfg.dual_clip > 0 && A < 0) {
      const double loss3 = -A * cfg.dual_clip;
      if (l > loss3) {
        l = loss3;
        dl = 0.0;
        out.clip_lower[t] = 1.0;
      }
    }
    out.loss[t] = l;
    out.dloss[t] = dl;
    out.log_ratio[t] = delta;
  }
}

// GSPO: one importance ratio per sequence, exp of the mean masked log-ratio s_i (clamped at 10),
// which every token of the sequence carries; token t's gradient flows through its own logp_t only
// (log ratio = s_i + logp_t - stopgrad(logp_t)), so d r / d logp_t = r.
void gspo_terms(const PolicyLossInputs& in, const TokenBatch& b, const PolicyLossConfig& cfg, TokenTerms& out) {
  const double lo = 1.0 - cfg.clip_low, hi = 1.0 + cfg.clip_high;
  for (int64_t i = 0; i < b.n_seqs; ++i) {
    double sum = 0.0, count = 0.0;
    for (int32_t t = b.cu_seqlens[i]; t < b.cu_seqlens[i + 1]; ++t) {
      if (b.mask[t] == 0.0f) continue;
      sum += b.mask[t] * (static_cast<double>(in.logp[t]) - in.old_logp[t]);
      count += b.mask[t];
    }
    const double s = count > 0 ? sum / count : 0.0;
    const double r = std::exp(std::min(s, kMaxSeqLogRatio));
    const double dr = s < kMaxSeqLogRatio ? r : 0.0;
    for (int32_t t = b.cu_seqlens[i]; t < b.cu_seqlens[i + 1]; ++t) {
      double l, dl;
      out.clip_higher[t] = clipped_surrogate(in.advantages[t], r, dr, lo, hi, &l, &dl) ? 1.0 : 0.0;
      out.loss[t] = l;
      out.dloss[t] = dl;
      out.log_ratio[t] = static_cast<double>(in.logp[t]) - in.old_logp[t];
    }
  }
}

// CISPO: l = -stopgrad(clip(r, 1 - clip_low, 1 + clip_high)) A logp, a REINFORCE term weighted by
// the clipped (constant) ratio; d l / d logp = -clip(r) A.
void cispo_terms(const PolicyLossInputs& in, const TokenBatch& b, const PolicyLossConfig& cfg, TokenTerms& out) {
  const double lo = 1.0 - cfg.clip_low, hi = 1.0 + cfg.clip_high;
  for (int64_t t = 0; t < b.T; ++t) {
    const double delta = clamp(static_cast<double>(in.logp[t]) - in.old_logp[t], -kMaxLogRatio, kMaxLogRatio);
    const double r = std::exp(delta);
    const double weight = clamp(r, lo, hi);
    out.loss[t] = -weight * in.advantages[t] * in.logp[t];
    out.dloss[t] = -weight * in.advantages[t];
    out.clip_higher[t] = r > hi ? 1.0 : 0.0;
    out.clip_lower[t] = r < lo ? 1.0 : 0.0;
    out.log_ratio[t] = delta;
  }
}

// Per-token KL estimate of kl(pi || ref) from x = logp - ref_logp, in double, and d kl / d logp.
double kl_estimate(KlEstimator e, double x, double* dkl) {
  switch (e) {
    case KlEstimator::None:
      *dkl = 0.0;
      return 0.0;
    case KlEstimator::K1:
      *dkl = 1.0;
      return x;
    case KlEstimator::Abs:
      *dkl = x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
      return std::abs(x);
    case KlEstimator::Mse:
      *dkl = x;
      return 0.5 * x * x;
    case KlEstimator::LowVarKl: {
      // k3 = exp(ref - logp) - (ref - logp) - 1 >= 0; d k3 / d logp = 1 - exp(ref - logp). Both clamps
      // (log-ratio at +-20, value at +-10) stop the gradient where they are active.
      const double u = clamp(-x, -kMaxLogRatio, kMaxLogRatio);
      const double k3 = std::exp(u) - u - 1.0;
      *dkl = std::abs(x) < kMaxLogRatio && std::abs(k3) < kMaxLowVarKl ? 1.0 - std::exp(u) : 0.0;
      return clamp(k3, -kMaxLowVarKl, kMaxLowVarKl);
    }
  }
  fail("kl_estimate: unknown estimator ", static_cast<int>(e));
}

}  // namespace

double aggregate(const float* values, const TokenBatch& b, const AggSpec& agg, float* weight) {
  check_batch(b, "aggregate");
  const std::vector<double> w = aggregation_weights(b, agg);
  const double s = weighted_sum(w, values);
  if (weight)
    for (int64_t t = 0; t < b.T; ++t) weight[t] = static_cast<float>(w[t]);
  return s;
}

float kl_value(KlEstimator e, float logp, float ref_logp, float* dkl_dlogp) {
  double d;
  const double kl = kl_estimate(e, static_cast<double>(logp) - ref_logp, &d);
  if (dkl_dlogp) *dkl_dlogp = static_cast<float>(d);
  return static_cast<float>(kl);
}

PolicyLossMetrics policy_loss(const PolicyLossInputs& in, const TokenBatch& b, const PolicyLossConfig& cfg,
                              float* dlogp, float* dentropy) {
  check_batch(b, "policy_loss");
  MEDIX_CHECK(in.logp && in.old_logp && in.advantages && dlogp,
              "policy_loss: logp, old_logp, advantages and dlogp are required");
  MEDIX_CHECK(cfg.kl == KlEstimator::None || in.ref_logp, "policy_loss: a KL estimator needs ref_logp");
  MEDIX_CHECK(cfg.entropy_coef == 0.0f || in.entropy, "policy_loss: entropy_coef != 0 needs entropy");
  MEDIX_CHECK(cfg.clip_low >= 0 && cfg.clip_low < 1 && cfg.clip_high >= 0,
              "policy_loss: need 0 <= clip_low < 1 and clip_high >= 0");
  MEDIX_CHECK(cfg.dual_clip == 0.0f || cfg.dual_clip > 1.0f, "policy_loss: dual_clip must be 0 (off) or > 1");

  const int64_t T = b.T;
  const std::vector<double> w = aggregation_weights(b, cfg.agg);
  // The diagnostic metrics are plain masked means over this batch (no global normalisers).
  const std::vector<double> mean_w = aggregation_weights(b, AggSpec{});

  TokenTerms pg(T);
  switch (cfg.kind) {
    case PolicyLossKind::PPO:
      ppo_terms(in, b, cfg, pg);
      break;
    case PolicyLossKind::GSPO:
      gspo_terms(in, b, cfg, pg);
      break;
    case PolicyLossKind::CISPO:
      cispo_terms(in, b, cfg, pg);
      break;
  }

  PolicyLossMetrics r;
  for (int64_t t = 0; t < T; ++t) r.tokens += b.mask[t];
  r.pg_loss = weighted_sum(w, pg.loss);
  r.pg_clipfrac_higher = weighted_sum(mean_w, pg.clip_higher);
  r.pg_clipfrac_lower = weighted_sum(mean_w, pg.clip_lower);
  r.ppo_kl = -weighted_sum(mean_w, pg.log_ratio);

  std::vector<double> kl(T, 0.0), dkl(T, 0.0);
  if (cfg.kl != KlEstimator::None) {
    for (int64_t t = 0; t < T; ++t)
      kl[t] = kl_estimate(cfg.kl, static_cast<double>(in.logp[t]) - in.ref_logp[t], &dkl[t]);
    r.kl_loss = weighted_sum(w, kl);
  }
  if (in.entropy) r.entropy = weighted_sum(w, in.entropy);
  r.loss = r.pg_loss + cfg.kl_coef * r.kl_loss - cfg.entropy_coef * r.entropy;

  for (int64_t t = 0; t < T; ++t) dlogp[t] = static_cast<float>(w[t] * (pg.dloss[t] + cfg.kl_coef * dkl[t]));
  if (in.entropy && dentropy)
    for (int64_t t = 0; t < T; ++t) dentropy[t] = static_cast<float>(-cfg.entropy_coef * w[t]);
  return r;
}

double sft_loss(const float* logp, const TokenBatch& b, const AggSpec& agg, float* dlogp) {
  check_batch(b, "sft_loss");
  const std::vector<double> w = aggregation_weights(b, agg);
  if (dlogp)
    for (int64_t t = 0; t < b.T; ++t) dlogp[t] = static_cast<float>(-w[t]);
  return -weighted_sum(w, logp);
}

}  // namespace medix::cpu
