// N-API face of causal grouped-query attention over packed sequences (native/ops/attention.h).
// attentionForward / attentionBackward run on the calling thread; the *Async variants run the same
// work on a libuv worker and return a promise, because attention over long sequences takes long
// enough to stall the JS event loop. All of them check every argument before touching memory and
// return fresh arrays (backward gradients are accumulated into zeroed ones).
#include <cmath>
#include <functional>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../ops/attention.h"
#include "registry.h"

namespace medix::bindings {
namespace {

constexpr int64_t kMaxHeads = 4096;
constexpr int64_t kMaxHeadDim = 65536;
const bool kFinite = true;

// Shape options shared by forward and backward; T comes from q's length.
struct Options {
  int64_t heads, kv_heads, head_dim;
  float scale;
  bool causal;
};

Options parse_options(const Napi::Value& v, const std::string& fn) {
  Napi::Object o = js::object(v, fn, "options");
  Options opt{};
  opt.heads = js::integer(o, "heads", fn, 1, kMaxHeads);
  opt.kv_heads = js::integer(o, "kvHeads", fn, 1, kMaxHeads);
  opt.head_dim = js::integer(o, "headDim", fn, 1, kMaxHeadDim);
  if (opt.heads % opt.kv_heads != 0)
    throw Napi::RangeError::New(v.Env(), fn + ": option 'heads' (" + std::to_string(opt.heads) +
                                             ") must be a multiple of 'kvHeads' (" + std::to_string(opt.kv_heads) +
                                             ")");
  const double scale = js::number_or(o, "scale", fn, 1.0 / std::sqrt(static_cast<double>(opt.head_dim)));
  if (!(scale > 0))
    throw Napi::RangeError::New(v.Env(), fn + ": option 'scale' must be > 0, got " + std::to_string(scale));
  opt.scale = static_cast<float>(scale);
  opt.causal = js::boolean_or(o, "causal", fn, true);
  return opt;
}

// Token count from q's length, which must be a whole number of [heads, headDim] rows.
int64_t token_count(const Napi::Value& q_value, const Options& opt, const std::string& fn) {
  const int64_t row = opt.heads * opt.head_dim;
  const int64_t n = static_cast<int64_t>(js::f32(q_value, fn, "q").length);
  if (n % row != 0)
    throw Napi::RangeError::New(q_value.Env(), fn + ": q length " + std::to_string(n) +
                                                   " is not a multiple of heads*headDim (" + std::to_string(row) + ")");
  return n / row;
}

// The checked inputs of one call: views into the JS arrays plus the shape the op reads.
struct ForwardArgs {
  js::View<float> q, k, v;
  js::View<int32_t> cu;
  AttentionShape shape;
};

ForwardArgs forward_args(const Napi::CallbackInfo& info, const std::string& fn, size_t first) {
  const Options opt = parse_options(info[first + 4], fn);
  const int64_t T = token_count(info[first], opt, fn);
  const int64_t kv_len = T * opt.kv_heads * opt.head_dim;
  ForwardArgs a;
  a.q = js::f32(info[first], fn, "q", T * opt.heads * opt.head_dim, "T*heads*headDim", kFinite);
  a.k = js::f32(info[first + 1], fn, "k", kv_len, "T*kvHeads*headDim", kFinite);
  a.v = js::f32(info[first + 2], fn, "v", kv_len, "T*kvHeads*headDim", kFinite);
  a.cu = js::i32(info[first + 3], fn, "cuSeqlens");
  js::check_cu_seqlens(a.cu, T, fn, "cuSeqlens");
  a.shape =
      AttentionShape{T,         opt.heads, opt.kv_heads, opt.head_dim, a.cu.data, static_cast<int64_t>(a.cu.length) - 1,
                     opt.scale, opt.causal};
  return a;
}

// Backward additionally reads dout, out and lse: (dout, out, lse, q, k, v, cuSeqlens, options).
struct BackwardArgs {
  ForwardArgs fwd;
  js::View<float> dout, out, lse;
};

BackwardArgs backward_args(const Napi::CallbackInfo& info, const std::string& fn) {
  BackwardArgs a;
  a.fwd = forward_args(info, fn, 3);
  const AttentionShape& s = a.fwd.shape;
  const int64_t q_len = s.T * s.n_heads * s.head_dim;
  a.dout = js::f32(info[0], fn, "dout", q_len, "T*heads*headDim", kFinite);
  a.out = js::f32(info[1], fn, "out", q_len, "T*heads*headDim", kFinite);
  a.lse = js::f32(info[2], fn, "lse", s.T * s.n_heads, "T*heads", kFinite);
  return a;
}

struct ForwardResult {
  Napi::Float32Array out, lse;
  Napi::Object object;
};

ForwardResult forward_result(Napi::Env env, const AttentionShape& s) {
  ForwardResult r{Napi::Float32Array::New(env, s.T * s.n_heads * s.head_dim),
                  Napi::Float32Array::New(env, s.T * s.n_heads), Napi::Object::New(env)};
  r.object.Set("out", r.out);
  r.object.Set("lse", r.lse);
  return r;
}

struct BackwardResult {
  Napi::Float32Array dq, dk, dv;
  Napi::Object object;
};

BackwardResult backward_result(Napi::Env env, const AttentionShape& s) {
  const size_t kv_len = s.T * s.n_kv_heads * s.head_dim;
  BackwardResult r{Napi::Float32Array::New(env, s.T * s.n_heads * s.head_dim), Napi::Float32Array::New(env, kv_len),
                   Napi::Float32Array::New(env, kv_len), Napi::Object::New(env)};
  r.object.Set("dq", r.dq);
  r.object.Set("dk", r.dk);
  r.object.Set("dv", r.dv);
  return r;
}

// Resolves a promise with `result` once `work` has run off the main thread. The arguments in
// info stay referenced until then so the arrays the work reads are not collected.
Napi::Value run_off_main_thread(const Napi::CallbackInfo& info, std::function<void()> work, Napi::Object result) {
  auto held = std::make_shared<Napi::ObjectReference>(Napi::Persistent(result));
  std::vector<Napi::Value> keep;
  for (size_t i = 0; i < info.Length(); ++i) keep.push_back(info[i]);
  return js::run_async(
      info.Env(), std::move(work), [held](Napi::Env) -> Napi::Value { return held->Value(); }, keep);
}

// The async work reads cu_seqlens from its own copy: offsets the caller changes while the work
// runs would otherwise send it outside the arrays. (Changed q/k/v values only change the result.)
std::shared_ptr<std::vector<int32_t>> own_cu_seqlens(AttentionShape& s) {
  auto copy = std::make_shared<std::vector<int32_t>>(s.cu_seqlens, s.cu_seqlens + s.n_seqs + 1);
  s.cu_seqlens = copy->data();
  return copy;
}

void forward(const ForwardArgs& a, float* out, float* lse) {
  cpu::attention_forward(out, lse, a.q.data, a.k.data, a.v.data, a.shape);
}

void backward(const BackwardArgs& a, float* dq, float* dk, float* dv) {
  const ForwardArgs& f = a.fwd;
  cpu::attention_backward(dq, dk, dv, a.dout.data, a.out.data, a.lse.data, f.q.data, f.k.data, f.v.data, f.shape);
}

Napi::Value AttentionForward(const Napi::CallbackInfo& info) {
  const ForwardArgs a = forward_args(info, "attentionForward", 0);
  ForwardResult r = forward_result(info.Env(), a.shape);
  forward(a, r.out.Data(), r.lse.Data());
  return r.object;
}

Napi::Value AttentionForwardAsync(const Napi::CallbackInfo& info) {
  ForwardArgs a = forward_args(info, "attentionForwardAsync", 0);
  ForwardResult r = forward_result(info.Env(), a.shape);
  auto cu = own_cu_seqlens(a.shape);
  float* out = r.out.Data();
  float* lse = r.lse.Data();
  return run_off_main_thread(
      info, [a, cu, out, lse] { forward(a, out, lse); }, r.object);
}

Napi::Value AttentionBackward(const Napi::CallbackInfo& info) {
  const BackwardArgs a = backward_args(info, "attentionBackward");
  BackwardResult r = backward_result(info.Env(), a.fwd.shape);
  backward(a, r.dq.Data(), r.dk.Data(), r.dv.Data());
  return r.object;
}

Napi::Value AttentionBackwardAsync(const Napi::CallbackInfo& info) {
  BackwardArgs a = backward_args(info, "attentionBackwardAsync");
  BackwardResult r = backward_result(info.Env(), a.fwd.shape);
  auto cu = own_cu_seqlens(a.fwd.shape);
  float* dq = r.dq.Data();
  float* dk = r.dk.Data();
  float* dv = r.dv.Data();
  return run_off_main_thread(
      info, [a, cu, dq, dk, dv] { backward(a, dq, dk, dv); }, r.object);
}

}  // namespace

void init_attention(Napi::Env env, Napi::Object exports) {
  exports.Set("attentionForward", Napi::Function::New(env, AttentionForward, "attentionForward"));
  exports.Set("attentionForwardAsync", Napi::Function::New(env, AttentionForwardAsync, "attentionForwardAsync"));
  exports.Set("attentionBackward", Napi::Function::New(env, AttentionBackward, "attentionBackward"));
  exports.Set("attentionBackwardAsync", Napi::Function::New(env, AttentionBackwardAsync, "attentionBackwardAsync"));
}

}  // namespace medix::bindings
