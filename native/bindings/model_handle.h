// Access to the native model behind a JS Qwen3Model object, for bindings that work on a model
// (generation, full sharding, the compute dtype). The busy flag is the model's: a binding that runs
// async work on the model claims it, so generation and forward/backward never touch the weights at
// the same time. The thread is the model's too: all of its backend work runs there.
#pragma once
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../core/backend_thread.h"
#include "../model/qwen3.h"
#include "js.h"

namespace medix::bindings {

// A model's backend thread (core/backend_thread.h), which runs everything the model, its generators
// and its full sharding do on the backend, from its construction to its destruction, in submission
// order: sync calls wait for it, async ones settle their promise when their work there is done. One
// per model rather than per backend (a backend is one per device for the whole process), so two
// models, a policy and its reference, still run side by side. Calls that only read or set host-side
// state of an idle model (flags, shapes, counters, the ZeRO-1 partition) stay on the JS thread. It notes the OS threads
// the work ran on, which Qwen3Model.workThreads() reports for the test that checks all of the above.
class ModelThread {
 public:
  explicit ModelThread(Backend& be) : thread_(be) {}

  // Runs work there and waits, rethrowing what it threw.
  void call(std::function<void()> work) { thread_.call(noted(std::move(work))); }
  // The same, never throwing, for destructors (releases are not checked anyway).
  void call_quietly(std::function<void()> work) noexcept { thread_.post(std::move(work)).wait(); }
  // js::run_async with the work run there.
  Napi::Promise async(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done,
                      const std::vector<Napi::Value>& keep, std::function<void()> settle) {
    return js::run_async(env, noted(std::move(work)), std::move(done), keep, std::move(settle), &thread_);
  }
  std::vector<int64_t> work_threads() const {
    std::lock_guard<std::mutex> lock(mu_);
    return seen_;
  }

 private:
  std::function<void()> noted(std::function<void()> work) {
    return [this, work = std::move(work)] {
      note(os_thread_id());
      work();
    };
  }
  void note(int64_t tid) {
    std::lock_guard<std::mutex> lock(mu_);
    for (int64_t t : seen_)
      if (t == tid) return;
    seen_.push_back(tid);
  }

  mutable std::mutex mu_;
  std::vector<int64_t> seen_;  // distinct, in the order first seen
  BackendThread thread_;       // last: joined before the members above go
};

struct ModelHandle {
  Qwen3Model* model = nullptr;
  std::shared_ptr<std::atomic<bool>> busy;
  std::shared_ptr<ModelThread> thread;  // shared with generators, which may outlive the model at exit
};

// Throws a TypeError naming fn and the argument if v is not a Qwen3Model created by this addon.
ModelHandle model_handle(const Napi::Value& v, const std::string& fn, const char* name);

}  // namespace medix::bindings
