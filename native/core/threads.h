// A small persistent thread pool with static partitioning.
//
// Why hand-written: we need (1) static, reproducible work splits so that results are bit-identical
// run to run, and (2) no dependency on OpenMP, which node-gyp builds do not configure portably.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

namespace medix {

int num_threads();
void set_num_threads(int n);  // n <= 0 means "all hardware threads"

// Calls fn(begin, end) on contiguous ranges covering [0, n). Ranges are fixed by n, min_chunk and
// the thread count only, never by timing. Nested calls (from inside fn) run serially.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk = 1);

// Calls task(begin, end) on ranges of units covering [0, cost.size()), one range per thread, holding
// about equal total cost rather than equal unit counts (causal attention tiles differ a lot in cost:
// a late block sees many more keys). Each range holds at least min_cost_per_range where the total
// allows (waking a thread for less costs more than it saves). The split depends only on the costs,
// min_cost_per_range and the thread count.
void parallel_for_balanced(const std::vector<double>& cost, const std::function<void(int64_t, int64_t)>& task,
                           double min_cost_per_range = 0.0);

// Deterministic reduction helper: splits [0, n) into a fixed number of chunks that does NOT depend on
// the thread count, so per-chunk partial sums combined in chunk order give identical results
// whatever the pool size. Returns the number of chunks; chunk c covers [c*n/k, (c+1)*n/k).
int64_t fixed_chunks(int64_t n, int64_t min_chunk = 256, int64_t max_chunks = 64);

}  // namespace medix
