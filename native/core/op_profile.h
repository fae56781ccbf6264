// Where a step's time goes: when switched on, every op of the CPU backend adds its wall time (and the
// multiply-add work of its matrix products) to one of a few kinds, and parallel_for counts its calls.
// Off by default, when each op pays one relaxed atomic load. Benchmarks read and reset it.
#pragma once
#include <chrono>
#include <cstdint>

namespace medix {

enum class OpKind { Embedding, Norm, Linear, Rope, Attention, Elementwise, LogprobHead, Optimizer, Moe, Decode, Count };

const char* op_kind_name(OpKind k);

struct OpTotals {
  int64_t ns = 0, calls = 0;
  double flops = 0;  // of the matrix products (linear, log-prob head, attention's QK^T and PV)
};

void set_op_profiling(bool on);
bool op_profiling();
void op_profile_add(OpKind k, int64_t ns, double flops);
// The totals since the last call (then zeroed), and the parallel_for calls in that time.
void take_op_profile(OpTotals (&out)[static_cast<int>(OpKind::Count)], int64_t* parallel_calls);
void count_parallel_call();

// Times its scope into kind `k` when profiling is on.
class OpTimer {
 public:
  explicit OpTimer(OpKind k, double flops = 0) : kind_(k), flops_(flops), on_(op_profiling()) {
    if (on_) start_ = std::chrono::steady_clock::now();
  }
  ~OpTimer() {
    if (!on_) return;
    const auto elapsed = std::chrono::steady_clock::now() - start_;
    op_profile_add(kind_, std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count(), flops_);
  }
  OpTimer(const OpTimer&) = delete;
  OpTimer& operator=(const OpTimer&) = delete;

 private:
  OpKind kind_;
  double flops_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace medix
