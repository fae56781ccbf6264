// The sampling conformance cases (kernels/sampling.cu against cpu::sample, ops/sampling.h): greedy,
// temperature, top-k, top-p, min-p and the repetition penalty, alone and mixed row by row in one
// batch, at tiny vocabularies (50, and 7 and 65: a group of 8 and a draw block of 64 partly filled)
// and at Qwen3's (151,936) with 32 rows; the refusal of a non-finite logit. Included by
// cuda_conformance.cu inside its namespace, after run_case and the tolerances.
//
// Tolerances: tokens exactly (as floats, exact below 2^24): the GPU reproduces the CPU's arithmetic,
// seeded draws included (sampling.cu says how). Log-probs kUlps: the log-sum-exp is summed exactly on
// the GPU and term by term on the CPU, some 1e-16 apart before the cast to float, so a float ulp at
// most; the other rows' log-probs (-1 and below) set the scale of the absolute term.
//
// What a wrong kernel gets wrong, and what here catches it:
//   - a draw that ignores its counter, stream or seed: one row drawn at 8 counters x 4 streams x 2
//     seeds, whose CPU tokens are checked to differ along each (else the case could not tell);
//   - ties broken towards the higher id, or a top-k / top-p that keeps every id equal to the boundary:
//     integer and bf16-rounded logits, many equal values at every boundary;
//   - a penalty applied once per occurrence, or with the wrong sign rule: histories with repeated ids
//     over positive and negative logits (rows of negative logits only among them); greedy rows whose
//     argmax the penalty moves;
//   - the greedy threshold: temperature 1e-6 samples (among tied maxima too), 1e-7 is greedy;
//   - the log-prob taken after the penalty or the filters, or at the wrong temperature;
//   - top-p decided by exact masses where the CPU's rounding decides (sampling.cu's replay): equal
//     logits with top_p 0.5 and an even vocabulary (exact sums on both sides), and two tied maxima at
//     temperature 0.05 under top_p 0.5 over a tail of e = 2^-56.3: the tail vanishes from the CPU's
//     mass (its float sums of 8 next to a 1, then its double sums of 8 tail ids, 2^-53.3 each, next to
//     1 or 2), so its target is 0.5 * 2 = 1 and the first maximum reaches it; the exact mass is
//     2 + 2^-51.3 (at 50 ids), the target above 1, and both maxima are kept (a kernel without the
//     replay draws the second maximum about half the time).
#pragma once

// Tokens compared as floats (exact below 2^24).
std::vector<float> token_floats(const std::vector<int32_t>& tokens) {
  return std::vector<float>(tokens.begin(), tokens.end());
}

enum class LogitKind {
  kLm,        // a few large logits over a long tail with noise (a language model's shape)
  kBf16,      // bf16-rounded values in [-3, 3]: equal values here and there
  kInteger,   // integers in [-4, 4]: many equal values at every boundary
  kConstant,  // all 1.5
  kTiedTop,   // 3 at ids 0 and V/2, 1.05 elsewhere
  kNegative,  // all in [-6, -1]: the penalty's rule for negative logits (multiply) moves the argmax
};

std::vector<float> sampling_logits(Rng& rng, int64_t V, LogitKind kind) {
  std::vector<float> x(static_cast<size_t>(V));
  for (int64_t i = 0; i < V; ++i) {
    switch (kind) {
      case LogitKind::kLm:
        x[i] = -1.5f * std::log(1.0f + static_cast<float>(rng.below(V))) + rng.uniform(-0.3f, 0.3f) +
               (rng.below(V) < 3 ? 9.0f : 0.0f);
        break;
      case LogitKind::kBf16:
        x[i] = bf16_value(bf16_bits(rng.uniform(-3.0f, 3.0f)));
        break;
      case LogitKind::kInteger:
        x[i] = static_cast<float>(rng.below(9) - 4);
        break;
      case LogitKind::kConstant:
        x[i] = 1.5f;
        break;
      case LogitKind::kTiedTop:
        x[i] = i == 0 || i == V / 2 ? 3.0f : 1.05f;
        break;
      case LogitKind::kNegative:
        x[i] = rng.uniform(-6.0f, -1.0f);
        break;
    }
  }
  return x;
}

SamplerParams sampler(float temperature, int32_t top_k, float top_p, float min_p, float penalty, uint64_t seed,
                      uint64_t stream = 0, uint64_t counter = 0) {
  SamplerParams p;
  p.temperature = temperature;
  p.top_k = top_k;
  p.top_p = top_p;
  p.min_p = min_p;
  p.repetition_penalty = penalty;
  p.seed = seed;
  p.stream = stream;
  p.counter = counter;
  return p;
}

// One batch: row r is rows[r] (V logits) with params[r] and histories[r]. counter_grid: the rows are
// one row's draws at counters x streams x seeds (8 x 4 x 2, counter fastest), and the CPU's tokens
// must change along each of the three somewhere, so that a kernel ignoring one fails.
void sampling_case(Context& ctx, const std::string& what, int64_t V, const std::vector<std::vector<float>>& rows,
                   const std::vector<SamplerParams>& params, const std::vector<std::vector<int32_t>>& histories,
                   bool counter_grid = false) {
  const int64_t n = static_cast<int64_t>(rows.size());
  MEDIX_CHECK(static_cast<int64_t>(params.size()) == n && static_cast<int64_t>(histories.size()) == n,
              "sampling_case: one parameter set and one history per row");
  std::vector<float> logits;
  std::vector<int32_t> history;
  std::vector<int64_t> offsets{0};
  for (int64_t r = 0; r < n; ++r) {
    logits.insert(logits.end(), rows[r].begin(), rows[r].end());
    history.insert(history.end(), histories[r].begin(), histories[r].end());
    offsets.push_back(static_cast<int64_t>(history.size()));
  }
  SampleBatch host;
  host.rows = n;
  host.vocab = V;
  host.params = params.data();
  host.history = history.data();
  host.history_offsets = offsets.data();
  run_case(
      ctx, "sampling", what + " " + to_string_shape({{"rows", n}, {"vocab", V}}),
      [&] {
        std::vector<int32_t> tokens(n);
        std::vector<float> logprobs(n);
        cpu::sample(tokens.data(), logprobs.data(), logits.data(), host);
        for (int64_t r = 0; r < n; ++r)
          MEDIX_CHECK(tokens[r] >= 0 && tokens[r] < V && std::isfinite(logprobs[r]), "sampling_case: the CPU drew ",
                      tokens[r], " (log-prob ", logprobs[r], ") in row ", r);
        if (counter_grid) {
          MEDIX_CHECK(n == 64, "sampling_case: a counter grid has 8 x 4 x 2 rows");
          auto varies = [&](int64_t stride) {  // some two rows one step apart along the axis differ
            for (int64_t r = 0; r + stride < n; ++r)
              if ((r / stride) % 2 == 0 && tokens[r] != tokens[r + stride]) return true;
            return false;
          };
          MEDIX_CHECK(varies(1) && varies(8) && varies(32),
                      "sampling_case: the CPU's draws do not differ along counter, stream and seed: the case "
                      "could not catch a kernel that ignores one");
        }
        return Outputs{{"tokens", token_floats(tokens)}, {"logprobs", std::move(logprobs)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_logits(logits), d_logprobs(n);
        DeviceBuffer<int32_t> d_history(history), d_tokens(n);
        SampleBatch b = host;
        b.history = d_history.get();
        timer.start();
        cuda::sample(d_tokens.get(), d_logprobs.get(), d_logits.get(), b);
        timer.stop();
        return Outputs{{"tokens", token_floats(d_tokens.to_host())}, {"logprobs", d_logprobs.to_host()}};
      },
      {{"tokens", kExact}, {"logprobs", kUlps}});
}

// A NaN in row 2 and an infinity in row 5: both sides refuse the batch with the same message (the
// first bad row, its id and value). Output: 1 when the GPU's error is the CPU's word for word.
void sampling_refusal_case(Context& ctx, int64_t V) {
  Rng rng(41);
  const int64_t n = 6;
  std::vector<float> logits = random_floats(rng, n * V, -2, 2);
  logits[2 * V + 17] = NAN;
  logits[5 * V + 3] = INFINITY;
  const std::vector<SamplerParams> params(n, sampler(0.8f, 0, 0.9f, 0.0f, 1.0f, 5));
  const std::vector<int64_t> offsets(n + 1, 0);
  SampleBatch host;
  host.rows = n;
  host.vocab = V;
  host.params = params.data();
  host.history_offsets = offsets.data();
  std::string cpu_error;
  run_case(
      ctx, "sampling", "non-finite logit " + to_string_shape({{"rows", n}, {"vocab", V}}),
      [&] {
        std::vector<int32_t> tokens(n);
        std::vector<float> logprobs(n);
        try {
          cpu::sample(tokens.data(), logprobs.data(), logits.data(), host);
        } catch (const Error& e) {
          cpu_error = e.what();
        }
        MEDIX_CHECK(cpu_error.rfind("sampling: row 2 logit 17 is ", 0) == 0, "sampling_refusal_case: the CPU said '",
                    cpu_error, "'");
        return Outputs{{"refused", {1.0f}}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_logits(logits), d_logprobs(n);
        DeviceBuffer<int32_t> d_tokens(n);
        std::string gpu_error;
        timer.start();
        try {
          cuda::sample(d_tokens.get(), d_logprobs.get(), d_logits.get(), host);
        } catch (const Error& e) {
          gpu_error = e.what();
        }
        timer.stop();
        return Outputs{{"refused", {gpu_error == cpu_error ? 1.0f : 0.0f}}};
      },
      {{"refused", kExact}});
}

// Rows of one kind, params from `make(r)`, histories of up to max_history ids (repeats included).
void sampling_batch(Context& ctx, const std::string& what, int64_t V, int64_t n, uint64_t seed,
                    const std::function<LogitKind(int64_t)>& kind, const std::function<SamplerParams(int64_t)>& make,
                    int64_t max_history) {
  Rng rng(seed);
  std::vector<std::vector<float>> rows;
  std::vector<SamplerParams> params;
  std::vector<std::vector<int32_t>> histories;
  for (int64_t r = 0; r < n; ++r) {
    rows.push_back(sampling_logits(rng, V, kind(r)));
    params.push_back(make(r));
    std::vector<int32_t> h(static_cast<size_t>(max_history > 0 ? rng.below(max_history + 1) : 0));
    for (size_t j = 0; j < h.size(); ++j) h[j] = j % 3 == 2 ? h[j - 1] : rng.below(V);  // every third a repeat
    histories.push_back(std::move(h));
  }
  sampling_case(ctx, what, V, rows, params, histories);
}

void sampling_cases(Context& ctx, bool big) {
  if (!wanted(ctx, "sampling")) return;
  const int64_t V = 50;
  auto cycle = [](std::initializer_list<LogitKind> kinds) {
    const std::vector<LogitKind> k(kinds);
    return [k](int64_t r) { return k[static_cast<size_t>(r) % k.size()]; };
  };
  const auto all_kinds =
      cycle({LogitKind::kLm, LogitKind::kBf16, LogitKind::kInteger, LogitKind::kTiedTop, LogitKind::kNegative});
  // Greedy at 0 and 1e-7 (lowest id among tied maxima), with and without a penalty that moves the argmax.
  sampling_batch(
      ctx, "greedy", V, 12, 1, all_kinds,
      [](int64_t r) { return sampler(r % 2 ? 1e-7f : 0.0f, 0, 1.0f, 0.0f, r % 3 == 0 ? 1.0f : 1.8f, 7); }, 40);
  // A penalty below 1 carrying logits near FLT_MAX past it: both samplers clamp to the float range
  // (without it the CPU computed infinity - infinity and returned token -1). Id 3 holds 3e38 and is in
  // the history, id 7 holds 2e38 and is not; greedy, sampled and filtered rows.
  {
    Rng rng(43);
    std::vector<std::vector<float>> rows;
    std::vector<SamplerParams> params;
    for (int64_t r = 0; r < 6; ++r) {
      rows.push_back(random_floats(rng, V, -2, 2));
      rows.back()[3] = r % 2 ? 3e38f : -3e38f;  // odd rows: the penalty's division overflows; even: none
      rows.back()[7] = 2e38f;
      params.push_back(sampler(r < 2 ? 0.0f : 0.7f, r < 4 ? 0 : 4, r < 4 ? 1.0f : 0.9f, 0.0f, 0.5f, 11 + r));
    }
    sampling_case(ctx, "penalty past the float range", V, rows, params,
                  std::vector<std::vector<int32_t>>(6, std::vector<int32_t>{3, 12}));
  }
  // Temperatures, 1e-6 included (the smallest that samples: among tied maxima it draws).
  sampling_batch(
      ctx, "temperature", V, 16, 2, all_kinds,
      [](int64_t r) {
        const float t[] = {1e-6f, 0.3f, 0.7f, 1.0f, 1.6f};
        return sampler(t[r % 5], 0, 1.0f, 0.0f, 1.0f, 100 + r, r % 3, r);
      },
      0);
  sampling_batch(
      ctx, "top-k", V, 16, 3, all_kinds,
      [](int64_t r) {
        const int32_t k[] = {1, 2, 5, 17, 49, 50, 80};
        return sampler(r % 4 == 0 ? 0.5f : 1.0f, k[r % 7], 1.0f, 0.0f, 1.0f, 200 + r, 0, 3 * r);
      },
      0);
  sampling_batch(
      ctx, "top-p", V, 16, 4, all_kinds,
      [](int64_t r) {
        const float p[] = {0.05f, 0.5f, 0.8f, 0.9f, 0.99f};
        return sampler(r % 3 == 0 ? 0.6f : 1.0f, r % 4 == 1 ? 10 : 0, p[r % 5], 0.0f, 1.0f, 300 + r, 1, r);
      },
      0);
  sampling_batch(
      ctx, "min-p", V, 16, 5, all_kinds,
      [](int64_t r) {
        const float m[] = {0.01f, 0.1f, 0.3f, 1.0f};
        return sampler(r % 2 ? 1.2f : 0.8f, 0, r % 3 == 0 ? 0.9f : 1.0f, m[r % 4], 1.0f, 400 + r, 2, r);
      },
      0);
  sampling_batch(
      ctx, "penalty", V, 16, 6, all_kinds,
      [](int64_t r) {
        const float pen[] = {1.3f, 0.7f, 2.0f, 1.1f};
        return sampler(r % 4 == 3 ? 0.0f : 1.0f, r % 5 == 0 ? 8 : 0, r % 3 == 0 ? 0.9f : 1.0f, 0.0f, pen[r % 4],
                       500 + r, 0, r);
      },
      60);
  // top-p where the CPU's rounding decides the cut (see the file comment). Even rows: equal logits
  // (top_p 0.5 of an even vocabulary puts the target on an exact prefix mass; 0.25 does not; a penalty
  // in two of them breaks the equality). Odd rows: two tied maxima at temperature 0.05 under top_p
  // 0.5, each drawn with its own seed.
  sampling_batch(
      ctx, "top-p rounding", V, 16, 7, cycle({LogitKind::kConstant, LogitKind::kTiedTop}),
      [](int64_t r) {
        if (r % 2 == 1) return sampler(0.05f, 0, 0.5f, 0.0f, 1.0f, 600 + r, 0, r);
        return sampler(1.0f, 0, r % 4 == 0 ? 0.5f : 0.25f, 0.0f, r % 8 == 2 ? 1.5f : 1.0f, 600 + r, 0, r);
      },
      20);
  // One row's draws over counters, streams and seeds.
  {
    Rng rng(8);
    const std::vector<float> row = random_floats(rng, V, -1, 1);
    std::vector<SamplerParams> params;
    for (int64_t r = 0; r < 64; ++r)
      params.push_back(sampler(1.0f, 0, 1.0f, 0.0f, 1.0f, 11 + r / 32, r / 8 % 4, r % 8));
    sampling_case(ctx, "counters x streams x seeds", V, std::vector<std::vector<float>>(64, row), params,
                  std::vector<std::vector<int32_t>>(64), true);
  }
  // Everything mixed row by row, at vocabularies of 50, 7 (less than one group of 8) and 65.
  auto mixed = [](int64_t vocab) {
    return [vocab](int64_t r) {
      const float t[] = {0.0f, 1e-6f, 0.5f, 1.0f, 1.4f, 0.05f};
      const int32_t k[] = {0, 3, 20, static_cast<int32_t>(vocab) - 1};
      const float p[] = {1.0f, 0.5f, 0.9f};
      const float m[] = {0.0f, 0.05f, 0.0f, 0.2f, 0.0f};
      const float pen[] = {1.0f, 1.2f, 0.9f};
      return sampler(t[r % 6], k[r % 4], p[r % 3], m[r % 5], pen[r % 3], 700 + r, r % 4, 5 * r);
    };
  };
  sampling_batch(ctx, "mixed", V, 24, 9, all_kinds, mixed(V), 30);
  sampling_batch(ctx, "mixed", 7, 24, 10, all_kinds, mixed(7), 5);
  sampling_batch(ctx, "mixed", 65, 24, 11, all_kinds, mixed(65), 30);
  sampling_refusal_case(ctx, V);
  if (big) {
    // Qwen3's vocabulary at batch 32, parameters mixed row by row, 300-id histories; among the rows a
    // constant one and a tied-top one under top_p 0.5 (the CPU-rounding replay at full size).
    const int64_t Q = 151936;
    sampling_batch(
        ctx, "mixed", Q, 32, 12,
        cycle({LogitKind::kLm, LogitKind::kBf16, LogitKind::kLm, LogitKind::kInteger, LogitKind::kLm, LogitKind::kBf16,
               LogitKind::kLm, LogitKind::kConstant, LogitKind::kLm, LogitKind::kBf16, LogitKind::kLm,
               LogitKind::kTiedTop}),
        [](int64_t r) {
          if (r == 7 || r == 11) return sampler(r == 7 ? 1.0f : 0.05f, 0, 0.5f, 0.0f, 1.0f, 800 + r);
          const float t[] = {0.0f, 0.6f, 1.0f, 1.0f, 0.8f, 1.3f};
          const int32_t k[] = {0, 0, 50, 1000};
          const float p[] = {1.0f, 0.95f, 0.8f};
          const float m[] = {0.0f, 0.0f, 0.05f};
          const float pen[] = {1.0f, 1.1f};
          return sampler(t[r % 6], k[r % 4], p[r % 3], m[r % 3], pen[r % 2], 800 + r, r % 8, 40 + r);
        },
        300);
  }
}
