#include "js.h"

#include <cmath>
#include <cstring>
#include <sstream>

#include "../core/backend_thread.h"
#include "../core/cu_seqlens.h"

namespace medix::js {
namespace {

[[noreturn]] void type_error(const Napi::Env& env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }
[[noreturn]] void range_error(const Napi::Env& env, const std::string& msg) { throw Napi::RangeError::New(env, msg); }

template <typename T>
View<T> typed(const Napi::Value& v, const std::string& fn, const char* name, napi_typedarray_type type,
              const char* type_name, int64_t expect, const char* what_len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != type) {
    std::string got = v.IsTypedArray() ? "a different typed array"
                      : v.IsArray()    ? "a plain Array"
                                       : "not a typed array";
    type_error(v.Env(), fn + ": " + name + " must be a " + type_name + " (got " + got + ")");
  }
  auto arr = v.As<Napi::TypedArrayOf<T>>();
  View<T> out{arr.Data(), arr.ElementLength()};
  if (expect >= 0 && static_cast<int64_t>(out.length) != expect) {
    std::ostringstream os;
    os << fn << ": " << name << " must have length " << expect;
    if (what_len) os << " (" << what_len << ")";
    os << ", got " << out.length;
    range_error(v.Env(), os.str());
  }
  return out;
}

void check_finite(const Napi::Env& env, const View<float>& view, const std::string& fn, const char* name) {
  for (size_t i = 0; i < view.length; ++i) {
    if (!std::isfinite(view.data[i])) {
      std::ostringstream os;
      os << fn << ": " << name << " contains a non-finite value (" << view.data[i] << ") at index " << i;
      range_error(env, os.str());
    }
  }
}

Napi::Value field(const Napi::Object& o, const char* key) { return o.Get(key); }

}  // namespace

View<float> f32(const Napi::Value& v, const std::string& fn, const char* name, int64_t expect, const char* what_len,
                bool finite) {
  auto view = typed<float>(v, fn, name, napi_float32_array, "Float32Array", expect, what_len);
  if (finite) check_finite(v.Env(), view, fn, name);
  return view;
}

View<int32_t> i32(const Napi::Value& v, const std::string& fn, const char* name, int64_t expect, const char* what_len) {
  return typed<int32_t>(v, fn, name, napi_int32_array, "Int32Array", expect, what_len);
}

View<uint16_t> bf16(const Napi::Value& v, const std::string& fn, const char* name, int64_t expect,
                    const char* what_len) {
  return typed<uint16_t>(v, fn, name, napi_uint16_array, "Uint16Array (bf16 bits)", expect, what_len);
}

View<float> f32_opt(const Napi::Value& v, const std::string& fn, const char* name, int64_t expect, const char* what_len,
                    bool finite) {
  if (v.IsUndefined() || v.IsNull()) return {};
  return f32(v, fn, name, expect, what_len, finite);
}

void check_ids(const View<int32_t>& ids, int32_t lo, int32_t hi, const std::string& fn, const char* name) {
  for (size_t i = 0; i < ids.length; ++i) {
    if (ids.data[i] < lo || ids.data[i] >= hi) {
      std::ostringstream os;
      os << fn << ": " << name << "[" << i << "] = " << ids.data[i] << " is out of range [" << lo << ", " << hi << ")";
      throw std::range_error(os.str());
    }
  }
}

void check_cu_seqlens(const View<int32_t>& cu, int64_t total, const std::string& fn, const char* name) {
  medix::check_cu_seqlens(cu.data, static_cast<int64_t>(cu.length), total, fn.c_str(), name);
}

Napi::Object object(const Napi::Value& v, const std::string& fn, const char* name) {
  if (!v.IsObject() || v.IsArray() || v.IsTypedArray()) type_error(v.Env(), fn + ": " + name + " must be an object");
  return v.As<Napi::Object>();
}

int64_t integer(const Napi::Object& o, const char* key, const std::string& fn, int64_t lo, int64_t hi) {
  Napi::Value v = field(o, key);
  if (!v.IsNumber()) type_error(o.Env(), fn + ": option '" + key + "' must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    std::ostringstream os;
    os << fn << ": option '" << key << "' must be an integer in [" << lo << ", " << hi << "], got " << d;
    range_error(o.Env(), os.str());
  }
  return static_cast<int64_t>(d);
}

int64_t integer_or(const Napi::Object& o, const char* key, const std::string& fn, int64_t lo, int64_t hi,
                   int64_t dflt) {
  return field(o, key).IsUndefined() ? dflt : integer(o, key, fn, lo, hi);
}

double number(const Napi::Object& o, const char* key, const std::string& fn) {
  Napi::Value v = field(o, key);
  if (!v.IsNumber()) type_error(o.Env(), fn + ": option '" + key + "' must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) range_error(o.Env(), fn + ": option '" + key + "' must be finite");
  return d;
}

double number_or(const Napi::Object& o, const char* key, const std::string& fn, double dflt) {
  return field(o, key).IsUndefined() ? dflt : number(o, key, fn);
}

bool boolean_or(const Napi::Object& o, const char* key, const std::string& fn, bool dflt) {
  Napi::Value v = field(o, key);
  if (v.IsUndefined()) return dflt;
  if (!v.IsBoolean()) type_error(o.Env(), fn + ": option '" + key + "' must be a boolean");
  return v.As<Napi::Boolean>().Value();
}

int choice_or(const Napi::Object& o, const char* key, const std::string& fn, const std::vector<std::string>& allowed,
              int dflt) {
  Napi::Value v = field(o, key);
  if (v.IsUndefined()) return dflt;
  std::string s = v.IsString() ? v.As<Napi::String>().Utf8Value() : std::string();
  for (size_t i = 0; i < allowed.size(); ++i)
    if (allowed[i] == s) return static_cast<int>(i);
  std::string list;
  for (size_t i = 0; i < allowed.size(); ++i) list += (i ? ", '" : "'") + allowed[i] + "'";
  type_error(o.Env(), fn + ": option '" + key + "' must be one of " + list +
                          (v.IsString() ? ", got '" + s + "'" : std::string(", got a non-string")));
}

int64_t integer_arg(const Napi::Value& v, const std::string& fn, const char* name, int64_t lo, int64_t hi) {
  if (!v.IsNumber()) type_error(v.Env(), fn + ": " + name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    std::ostringstream os;
    os << fn << ": " << name << " must be an integer in [" << lo << ", " << hi << "], got " << d;
    range_error(v.Env(), os.str());
  }
  return static_cast<int64_t>(d);
}

double number_arg(const Napi::Value& v, const std::string& fn, const char* name) {
  if (!v.IsNumber()) type_error(v.Env(), fn + ": " + name + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) range_error(v.Env(), fn + ": " + name + " must be finite");
  return d;
}

Napi::Float32Array new_f32(Napi::Env env, const float* src, size_t n) {
  auto arr = Napi::Float32Array::New(env, n);
  if (n) std::memcpy(arr.Data(), src, n * sizeof(float));
  return arr;
}

namespace {

// With a BackendThread, Execute hands the work to it and waits on a libuv worker, rather than a
// ThreadSafeFunction calling back from that thread: the promise, the kept values and the settle and
// error paths stay the ones every call already had, and the worker is parked for as long as the work
// runs, as it was when the work ran on it.
class Task final : public Napi::AsyncWorker {
 public:
  Task(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done,
       const std::vector<Napi::Value>& keep, std::function<void()> settle, BackendThread* thread)
      : Napi::AsyncWorker(env, "medix"),
        deferred_(Napi::Promise::Deferred::New(env)),
        work_(std::move(work)),
        done_(std::move(done)),
        settle_(std::move(settle)),
        thread_(thread) {
    for (const auto& v : keep) keep_.push_back(Napi::Persistent(v));
  }
  Napi::Promise promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    try {
      if (thread_)
        thread_->call(work_);
      else
        work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    if (settle_) settle_();
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, e.what()).Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    if (settle_) settle_();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::function<void()> settle_;
  BackendThread* thread_;
  std::vector<Napi::Reference<Napi::Value>> keep_;
};

}  // namespace

Napi::Promise run_async(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done,
                        const std::vector<Napi::Value>& keep, std::function<void()> settle, BackendThread* thread) {
  auto* task = new Task(env, std::move(work), std::move(done), keep, std::move(settle),
                        thread);  // deletes itself when finished
  Napi::Promise p = task->promise();
  task->Queue();
  return p;
}

}  // namespace medix::js
