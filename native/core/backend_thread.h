// A thread that owns a backend's work: it makes the backend's device current once, when it starts
// (Backend::bind_thread; a CUDA context is current per thread), then runs the work handed to it in
// submission order, each piece followed by Backend::synchronize so that an asynchronous backend's
// error surfaces in the piece that caused it. The bindings give each model one (model_handle.h).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include "backend.h"

namespace medix {

class BackendThread {
 public:
  explicit BackendThread(Backend& be);
  // Runs what was queued before, then joins. Not from the thread itself (work must not own it).
  ~BackendThread();
  BackendThread(const BackendThread&) = delete;
  BackendThread& operator=(const BackendThread&) = delete;

  Backend& backend() const { return be_; }
  // Queues work; the future becomes ready once it and the synchronize after it have run, holding what
  // either threw (or what bind_thread threw, which fails every piece of work).
  std::future<void> post(std::function<void()> work);
  // post, then wait, rethrowing what the work threw.
  void call(std::function<void()> work) { post(std::move(work)).get(); }

 private:
  void loop();

  Backend& be_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::packaged_task<void()>> queue_;
  bool stopping_ = false;
  std::exception_ptr bind_error_;  // written by the thread before it runs any work, read only by it
  std::thread thread_;             // last: starts once the members above exist
};

// The calling thread's id as the OS knows it (gettid on Linux, where the main thread's equals the pid).
int64_t os_thread_id();

}  // namespace medix
