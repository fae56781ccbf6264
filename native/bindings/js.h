// Helpers shared by the N-API bindings: checked access to JS arguments (typed arrays, option
// fields) and running work off the JS main thread. Every check names the function and the argument
// so a user sees e.g. "rmsnormForward: x must be a Float32Array of length 96 (rows*dim), got 95".
#pragma once
#define NAPI_VERSION 8
#include <napi.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace medix {
class BackendThread;  // core/backend_thread.h
}  // namespace medix

namespace medix::js {

template <typename T>
struct View {
  T* data = nullptr;
  size_t length = 0;
};

// A Float32Array / Int32Array argument. expect < 0 accepts any length; what_len describes the expected
// length in the message (e.g. "rows*dim"). finite=true rejects NaN/Inf with the index of the first one.
View<float> f32(const Napi::Value& v, const std::string& fn, const char* name, int64_t expect = -1,
                const char* what_len = nullptr, bool finite = false);
View<int32_t> i32(const Napi::Value& v, const std::string& fn, const char* name, int64_t expect = -1,
                  const char* what_len = nullptr);
// A Uint16Array of bf16 bits (core/bf16.h).
View<uint16_t> bf16(const Napi::Value& v, const std::string& fn, const char* name, int64_t expect = -1,
                    const char* what_len = nullptr);
// Same, but undefined/null gives an empty view (optional inputs).
View<float> f32_opt(const Napi::Value& v, const std::string& fn, const char* name, int64_t expect = -1,
                    const char* what_len = nullptr, bool finite = false);

// Checks every id is in [lo, hi); names the first bad index.
void check_ids(const View<int32_t>& ids, int32_t lo, int32_t hi, const std::string& fn, const char* name);
// Checks cu_seqlens: length n_seqs+1, starts at 0, non-decreasing, ends at total.
void check_cu_seqlens(const View<int32_t>& cu, int64_t total, const std::string& fn, const char* name);

// Fields of an options object.
Napi::Object object(const Napi::Value& v, const std::string& fn, const char* name);
int64_t integer(const Napi::Object& o, const char* key, const std::string& fn, int64_t lo, int64_t hi);
int64_t integer_or(const Napi::Object& o, const char* key, const std::string& fn, int64_t lo, int64_t hi, int64_t dflt);
double number(const Napi::Object& o, const char* key, const std::string& fn);
double number_or(const Napi::Object& o, const char* key, const std::string& fn, double dflt);
bool boolean_or(const Napi::Object& o, const char* key, const std::string& fn, bool dflt);
// A string field that must be one of `allowed`; returns its index in `allowed`.
int choice_or(const Napi::Object& o, const char* key, const std::string& fn, const std::vector<std::string>& allowed,
              int dflt);
// A positional integer argument.
int64_t integer_arg(const Napi::Value& v, const std::string& fn, const char* name, int64_t lo, int64_t hi);
double number_arg(const Napi::Value& v, const std::string& fn, const char* name);

Napi::Float32Array new_f32(Napi::Env env, const float* src, size_t n);

// Runs `work` off the JS main thread and returns a promise resolved with `done(env)` on the main
// thread, or rejected with the error `work` threw. `work` runs on `thread` when given (a model's
// backend thread, core/backend_thread.h), else on a libuv worker. `keep` holds JS values (typed arrays
// the work reads) alive until then. `settle`, if given, runs on the main thread just before the
// promise settles either way (e.g. to release a busy flag, so "busy" means "until the promise settles").
Napi::Promise run_async(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done,
                        const std::vector<Napi::Value>& keep = {}, std::function<void()> settle = {},
                        BackendThread* thread = nullptr);

}  // namespace medix::js
