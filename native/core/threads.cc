#include "threads.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "op_profile.h"

namespace medix {
namespace {

thread_local bool in_worker = false;

// Waits for `ready()` by spinning for up to kSpin, then returns false (the caller then blocks on a
// condition variable). A decode step makes ~60 parallel calls a few tens of microseconds apart;
// waking a thread blocked in the kernel costs about that much each time, so a short spin keeps the
// pool responsive without burning a core for long when there is no work (other processes, e.g.
// reward workers, get the core back after kSpin).
constexpr auto kSpin = std::chrono::microseconds(200);

template <class Ready>
bool spin_until(Ready ready) {
  const auto deadline = std::chrono::steady_clock::now() + kSpin;
  for (int i = 1;; ++i) {
    if (ready()) return true;
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
    if (i % 64 == 0 && std::chrono::steady_clock::now() > deadline) return false;
  }
}

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    stop();
    stopping_ = false;
    // New workers start from the current generation: a task run before the resize is not theirs to run.
    const uint64_t current = generation_.load();
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i, current] { loop(i, current); });
  }

  // Runs task(i) for i in [0, count) with count <= size(); the calling thread runs task(0).
  void run(int count, const std::function<void(int)>& task) {
    bool wake;
    {
      // Under the lock: a worker that found no new generation and is about to sleep either sees
      // this one or is counted in sleepers_ and gets the notification.
      std::lock_guard<std::mutex> g(mu_);
      task_ = &task;
      count_ = count;
      pending_.store(count - 1, std::memory_order_relaxed);
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
      wake = sleepers_ > 0;
    }
    if (wake) cv_.notify_all();
    in_worker = true;
    try {
      task(0);
    } catch (...) {
      std::lock_guard<std::mutex> g(mu_);
      if (!error_) error_ = std::current_exception();
    }
    in_worker = false;
    const auto done = [this] { return pending_.load(std::memory_order_acquire) == 0; };
    std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
    if (!spin_until(done)) {
      lock.lock();
      done_cv_.wait(lock, done);
    } else {
      lock.lock();
    }
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void loop(int index, uint64_t seen) {
    for (;;) {
      const auto fresh = [&] { return generation_.load(std::memory_order_acquire) != seen; };
      std::unique_lock<std::mutex> lock(mu_, std::defer_lock);
      if (!spin_until([&] { return fresh() || stopping_.load(std::memory_order_relaxed); })) {
        lock.lock();
        ++sleepers_;
        cv_.wait(lock, [&] { return stopping_.load() || fresh(); });
        --sleepers_;
      } else {
        lock.lock();
      }
      if (stopping_) return;
      seen = generation_.load();
      if (index >= count_) continue;
      const std::function<void(int)>* task = task_;
      lock.unlock();
      in_worker = true;
      try {
        (*task)(index);
      } catch (...) {
        std::lock_guard<std::mutex> g(mu_);
        if (!error_) error_ = std::current_exception();
      }
      in_worker = false;
      if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        // Taking the lock orders this notification after the caller's check in done_cv_.wait.
        std::lock_guard<std::mutex> g(mu_);
        done_cv_.notify_one();
      }
    }
  }

  void stop() {
    {
      std::lock_guard<std::mutex> g(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int)>* task_ = nullptr;  // guarded by mu_, published by generation_
  int count_ = 0;                                   // likewise
  int sleepers_ = 0;                                // workers blocked in cv_ (guarded by mu_)
  std::atomic<int> pending_{0};
  std::atomic<uint64_t> generation_{0};
  std::atomic<bool> stopping_{false};
  std::exception_ptr error_;
};

int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

std::mutex pool_mu;  // serialises whole parallel_for calls from different JS worker threads
Pool& pool() {
  static Pool p(hardware_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }

void set_num_threads(int n) {
  std::lock_guard<std::mutex> g(pool_mu);
  pool().resize(n <= 0 ? hardware_threads() : n);
}

void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t min_chunk) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  if (in_worker) {
    fn(0, n);
    return;
  }
  std::lock_guard<std::mutex> g(pool_mu);
  const int64_t parts = std::min<int64_t>(pool().size(), (n + min_chunk - 1) / min_chunk);
  if (parts <= 1) {
    in_worker = true;
    try {
      fn(0, n);
    } catch (...) {
      in_worker = false;
      throw;
    }
    in_worker = false;
    return;
  }
  count_parallel_call();  // one that wakes the pool's threads
  pool().run(static_cast<int>(parts), [&](int i) {
    const int64_t b = n * i / parts, e = n * (i + 1) / parts;
    if (b < e) fn(b, e);
  });
}

void parallel_for_balanced(const std::vector<double>& cost, const std::function<void(int64_t, int64_t)>& task,
                           double min_cost_per_range) {
  const int64_t n_units = static_cast<int64_t>(cost.size());
  std::vector<double> prefix(n_units + 1, 0.0);
  for (int64_t u = 0; u < n_units; ++u) prefix[u + 1] = prefix[u] + cost[u];
  const double total = prefix[n_units];
  int64_t parts = std::min<int64_t>(num_threads(), n_units);
  if (min_cost_per_range > 0.0)
    parts = std::min<int64_t>(parts, std::max<int64_t>(1, static_cast<int64_t>(total / min_cost_per_range)));
  if (parts <= 0) return;
  // Range p takes the units whose cost midpoint falls in [p, p + 1) * total / parts.
  auto first_unit = [&](int64_t p) {
    if (p == parts) return n_units;
    const double target = total * static_cast<double>(p) / static_cast<double>(parts);
    int64_t u = 0;
    while (u < n_units && prefix[u] + 0.5 * cost[u] < target) ++u;
    return u;
  };
  parallel_for(parts, [&](int64_t p_begin, int64_t p_end) {
    for (int64_t p = p_begin; p < p_end; ++p) task(first_unit(p), first_unit(p + 1));
  });
}

int64_t fixed_chunks(int64_t n, int64_t min_chunk, int64_t max_chunks) {
  if (n <= 0) return 0;
  return std::max<int64_t>(1, std::min<int64_t>(max_chunks, n / std::max<int64_t>(1, min_chunk)));
}

}  // namespace medix
