#include "backend_thread.h"

#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace medix {

BackendThread::BackendThread(Backend& be) : be_(be), thread_([this] { loop(); }) {}

BackendThread::~BackendThread() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

std::future<void> BackendThread::post(std::function<void()> work) {
  std::packaged_task<void()> task([this, work = std::move(work)] {
    if (bind_error_) std::rethrow_exception(bind_error_);
    work();
    be_.synchronize();
  });
  std::future<void> done = task.get_future();
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(task));
  }
  cv_.notify_one();
  return done;
}

void BackendThread::loop() {
  try {
    be_.bind_thread();
  } catch (...) {
    bind_error_ = std::current_exception();
  }
  for (;;) {
    std::packaged_task<void()> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything queued has run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();  // stores what the work threw in its future
  }
}

int64_t os_thread_id() {
#if defined(__linux__)
  return static_cast<int64_t>(syscall(SYS_gettid));
#else
  return static_cast<int64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()));
#endif
}

}  // namespace medix
