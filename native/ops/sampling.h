// Token sampling from rows of logits, as generation needs it.
//
// For one row of raw logits l[V] and its parameters:
//   1. repetition penalty (CTRL): for every token id in the row's history (prompt and output so far),
//      l -> l / penalty if l > 0, else l * penalty;
//   2. temperature: w = l / temperature;
//   3. top-k: keep the k largest w (ties broken by the lower id);
//   4. top-p: of those, keep the smallest set of largest w whose probability mass (softmax over the
//      kept tokens) reaches top_p;
//   5. min-p: of those, keep tokens whose probability is >= min_p times the largest;
//   6. draw from the softmax over the kept tokens by inverse CDF, visiting them in id order, with
//      u = uniform01(stream_seed(seed, stream), counter). The draw depends only on (seed, stream,
//      counter) and the row, never on other rows: a request's samples reproduce whatever else is in
//      the batch.
// temperature < kGreedyTemperature (1e-6, 0 included) is greedy: the largest penalised logit (lowest
// id on ties), no draw (dividing by a smaller temperature would only magnify rounding).
// Every logit must be finite: a NaN or an infinity is refused with an error naming row and id.
// The returned log-prob is that of the chosen token under softmax(l_raw / temperature) over the
// full vocabulary, before penalty and truncation (the "old log-prob" of RL); when greedy it is
// taken at temperature 1.
#pragma once
#include <cstdint>
#include <vector>
#include "../core/backend_op.h"

namespace medix {

constexpr float kGreedyTemperature = 1e-6f;

struct SamplerParams {
  float temperature = 1.0f;         // below kGreedyTemperature: greedy
  int32_t top_k = 0;                // <= 0 or >= vocab: off
  float top_p = 1.0f;               // in (0, 1]; 1: off
  float min_p = 0.0f;               // in [0, 1]; 0: off
  float repetition_penalty = 1.0f;  // > 0; 1: off
  uint64_t seed = 0;
  uint64_t stream = 0;   // sample index within its request
  uint64_t counter = 0;  // tokens this sample has drawn before
};

// Rows of a sampling batch: logits [rows, vocab]; row r's history is
// history[history_offsets[r] .. history_offsets[r+1]) (token ids in [0, vocab)).
struct SampleBatch {
  int64_t rows = 0, vocab = 0;
  const SamplerParams* params = nullptr;  // [rows], host memory
  const int32_t* history = nullptr;
  const int64_t* history_offsets = nullptr;  // [rows + 1], host memory
};

// The seed of sample `stream` of a request seeded with `seed`.
uint64_t sampler_stream_seed(uint64_t seed, uint64_t stream);

bool is_greedy(const SamplerParams& p);

// Throws medix::Error naming the field when a parameter is out of range.
void check_sampler_params(const SamplerParams& p);

namespace cpu {

// tokens[rows], logprobs[rows].
void sample(int32_t* tokens, float* logprobs, const float* logits, const SampleBatch& b);

// The distribution step 6 draws from, for one row: kept ids in ascending order and their
// probabilities (summing to 1). Greedy gives the one chosen id with probability 1. For tests and
// for anyone who wants to see what a parameter set keeps.
void sampling_distribution(std::vector<int32_t>& ids, std::vector<double>& probs, const float* logits, int64_t vocab,
                           const SamplerParams& p, const int32_t* history, int64_t n_history);

}  // namespace cpu

// The pointers in a SampleBatch, for the device-memory guard (core/backend_op.h).
inline void visit_memory(MemoryArgs& m, const SampleBatch& b) {
  m.push_back({"b.history", b.history, false});
  m.push_back({"b.params", b.params, true});
  m.push_back({"b.history_offsets", b.history_offsets, true});
}

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct Sample : BackendOp<Sample, decltype(cpu::sample)> {
  static constexpr const char* name = "sample";
  static constexpr OpKind kind = OpKind::Decode;
  static constexpr OpArg args[] = {{"tokens"}, {"logprobs"}, {"logits"}, {"b"}};
};

}  // namespace medix
