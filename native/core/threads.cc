#include "threads.h"

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace medix {
namespace {

thread_local bool in_worker = false;

class Pool {
 public:
  explicit Pool(int n) { resize(n); }
  ~Pool() { stop(); }

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  void resize(int n) {
    stop();
    stopping_ = false;
    // New workers start from the current generation: a task run before the resize is not theirs to run.
    const uint64_t current = generation_;
    for (int i = 1; i < n; ++i) workers_.emplace_back([this, i, current] { loop(i, current); });
  }

  // Runs task(i) for i in [0, count) with count <= size(); the calling thread runs task(0).
  void run(int count, const std::function<void(int)>& task) {
    std::unique_lock<std::mutex> lock(mu_);
    task_ = &task;
    count_ = count;
    pending_ = count - 1;
    error_ = nullptr;
    ++generation_;
    lock.unlock();
    cv_.notify_all();
    in_worker = true;
    try {
      task(0);
    } catch (...) {
      std::lock_guard<std::mutex> g(mu_);
      if (!error_) error_ = std::current_exception();
    }
    in_worker = false;
    lock.lock();
    done_cv_.wait(lock, [this] { return pending_ == 0; });
    task_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void loop(int index, uint64_t seen) {
    for (;;) {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
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
      lock.lock();
      if (--pending_ == 0) done_cv_.notify_one();
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
  const std::function<void(int)>* task_ = nullptr;
  int count_ = 0, pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
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
  pool().run(static_cast<int>(parts), [&](int i) {
    const int64_t b = n * i / parts, e = n * (i + 1) / parts;
    if (b < e) fn(b, e);
  });
}

int64_t fixed_chunks(int64_t n, int64_t min_chunk, int64_t max_chunks) {
  if (n <= 0) return 0;
  return std::max<int64_t>(1, std::min<int64_t>(max_chunks, n / std::max<int64_t>(1, min_chunk)));
}

}  // namespace medix
