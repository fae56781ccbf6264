#include "op_profile.h"

#include <atomic>

namespace medix {
namespace {

constexpr int kKinds = static_cast<int>(OpKind::Count);
std::atomic<bool> enabled{false};
std::atomic<int64_t> kind_ns[kKinds], kind_calls[kKinds], parallel_calls{0};
std::atomic<double> kind_flops[kKinds];

}  // namespace

const char* op_kind_name(OpKind k) {
  static const char* const names[kKinds] = {"embedding",   "norms",        "linear",    "rope", "attention",
                                            "elementwise", "logprob_head", "optimizer", "moe",  "decode"};
  return names[static_cast<int>(k)];
}

void set_op_profiling(bool on) { enabled.store(on, std::memory_order_relaxed); }
bool op_profiling() { return enabled.load(std::memory_order_relaxed); }

void op_profile_add(OpKind k, int64_t ns, double flops) {
  const int i = static_cast<int>(k);
  kind_ns[i].fetch_add(ns, std::memory_order_relaxed);
  kind_calls[i].fetch_add(1, std::memory_order_relaxed);
  double f = kind_flops[i].load(std::memory_order_relaxed);
  while (!kind_flops[i].compare_exchange_weak(f, f + flops, std::memory_order_relaxed)) {
  }
}

void count_parallel_call() {
  if (op_profiling()) parallel_calls.fetch_add(1, std::memory_order_relaxed);
}

void take_op_profile(OpTotals (&out)[kKinds], int64_t* calls) {
  for (int i = 0; i < kKinds; ++i) {
    out[i].ns = kind_ns[i].exchange(0);
    out[i].calls = kind_calls[i].exchange(0);
    out[i].flops = kind_flops[i].exchange(0);
  }
  *calls = parallel_calls.exchange(0);
}

}  // namespace medix
