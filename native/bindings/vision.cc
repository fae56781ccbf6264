// N-API face of the whole Qwen3-VL vision tower (native/model/qwen3_vl_vision.h); its single ops run
// through runOp (the entries at the end of native/ops/<family>.cc). Synchronous; arguments are checked
// before any memory is touched; backward functions return gradients accumulated into fresh zeroed arrays.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "../model/qwen3_vl_vision.h"
#include "../core/error.h"
#include "registry.h"
#include "vision_config.h"

namespace medix::bindings {
namespace {

constexpr int64_t kMaxDim = int64_t(1) << 24;
const bool kFinite = true;

Napi::Float32Array zeros(Napi::Env env, int64_t n) { return Napi::Float32Array::New(env, static_cast<size_t>(n)); }

// The tower on a backend with the arrays it reads from backend memory (parameters, output gradients): on
// the CPU backend (whose memory is the host's) the arrays themselves, elsewhere copies kept as long as the
// tower.
struct TowerRun {
  Backend* be = nullptr;
  std::vector<BackendArray<float>> held;
  std::unique_ptr<VisionTower> tower;

  bool on_cpu() const { return be == &cpu_backend(); }
  const float* in(const float* host, int64_t n) {
    if (on_cpu()) return host;
    held.push_back(BackendArray<float>::uninit(*be, n));
    be->from_host(held.back().get(), host, sizeof(float) * static_cast<size_t>(n));
    return held.back().get();
  }
  // A fresh JS array holding n values of backend memory p.
  Napi::Float32Array out(Napi::Env env, const float* p, int64_t n) const {
    auto a = zeros(env, n);
    be->to_host(a.Data(), p, sizeof(float) * static_cast<size_t>(n));
    return a;
  }
};

// The backend options.backend names ("cpu", the default, "cuda", or "cuda-guard" for tests).
Backend& tower_backend(const Napi::Value& v, const std::string& fn) {
  if (v.IsUndefined()) return cpu_backend();
  return backend_option(js::object(v, fn, "options"), fn);
}

}  // namespace

// Grids: Int32Array [n_images * 3] of (t, h, w), h and w multiples of merge (vision_grid.h).
std::vector<ImageGrid> parse_image_grids(const Napi::Value& v, int64_t merge, const std::string& fn) {
  auto g = js::i32(v, fn, "grids");
  try {
    return image_grids(g.data, static_cast<int64_t>(g.length), merge);
  } catch (const Error& e) {
    throw Napi::RangeError::New(v.Env(), fn + ": " + e.what());
  }
}

ImageInputs parse_image_inputs(const Napi::Value& grids, const Napi::Value& pixels, const VisionConfig& c,
                               const std::string& fn, const std::string& what) {
  ImageInputs in;
  in.grids = parse_image_grids(grids, c.merge, fn);
  const std::string name = what + ".pixels";
  auto px = js::f32(pixels, fn, name.c_str(), patch_count(in.grids) * c.patch_inputs(), "patches*patchInputs", true);
  in.pixels.assign(px.data, px.data + px.length);
  return in;
}

namespace {

// ---------------------------------------------------------------------------------------------
// Vision tower: config object as Hugging Face's vision_config, parameters as an array in
// visionParameters order.

}  // namespace

VisionConfig parse_vision_config(const Napi::Value& v, const std::string& fn) {
  Napi::Object o = js::object(v, fn, "config");
  VisionConfig c;
  c.depth = js::integer(o, "depth", fn, 1, 4096);
  c.hidden = js::integer(o, "hiddenSize", fn, 1, kMaxDim);
  c.heads = js::integer(o, "numHeads", fn, 1, 4096);
  c.intermediate = js::integer(o, "intermediateSize", fn, 1, kMaxDim);
  c.out_hidden = js::integer(o, "outHiddenSize", fn, 1, kMaxDim);
  c.in_channels = js::integer(o, "inChannels", fn, 1, 64);
  c.temporal_patch = js::integer(o, "temporalPatchSize", fn, 1, 64);
  c.patch = js::integer(o, "patchSize", fn, 1, 1024);
  c.merge = js::integer(o, "spatialMergeSize", fn, 1, 64);
  c.side = js::integer(o, "positionSide", fn, 1, 65536);
  c.theta = static_cast<float>(js::number_or(o, "ropeTheta", fn, 10000.0));
  c.eps = static_cast<float>(js::number_or(o, "eps", fn, 1e-6));
  Napi::Value ds = o.Get("deepstackIndexes");
  if (!ds.IsUndefined()) {
    if (!ds.IsArray()) throw Napi::TypeError::New(v.Env(), fn + ": config.deepstackIndexes must be an array");
    Napi::Array arr = ds.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i)
      c.deepstack_indexes.push_back(arr.Get(i).As<Napi::Number>().Int64Value());
  }
  try {
    check_vision_config(c);
  } catch (const std::invalid_argument& e) {
    throw Napi::RangeError::New(v.Env(), fn + ": " + e.what());
  }
  return c;
}

namespace {

Napi::Value VisionParameters(const Napi::CallbackInfo& info) {
  const VisionConfig c = parse_vision_config(info[0], "visionParameters");
  Napi::Env env = info.Env();
  const std::vector<VisionParam> ps = vision_parameters(c);
  Napi::Array out = Napi::Array::New(env, ps.size());
  for (size_t i = 0; i < ps.size(); ++i) {
    Napi::Object e = Napi::Object::New(env);
    e.Set("name", ps[i].name);
    Napi::Array shape = Napi::Array::New(env, ps[i].shape.size());
    for (size_t k = 0; k < ps[i].shape.size(); ++k)
      shape.Set(static_cast<uint32_t>(k), static_cast<double>(ps[i].shape[k]));
    e.Set("shape", shape);
    out.Set(static_cast<uint32_t>(i), e);
  }
  return out;
}

// (params, pixels, grids, config) and the options at `options_at`: runs the forward on the backend they
// name and returns the tower ready for backward.
TowerRun run_tower(const Napi::CallbackInfo& info, const std::string& fn, size_t options_at) {
  const VisionConfig c = parse_vision_config(info[3], fn);
  const std::vector<VisionParam> ps = vision_parameters(c);
  if (!info[0].IsArray()) throw Napi::TypeError::New(info.Env(), fn + ": params must be an array of Float32Array");
  Napi::Array arr = info[0].As<Napi::Array>();
  if (arr.Length() != ps.size())
    throw Napi::RangeError::New(info.Env(), fn + ": params must hold " + std::to_string(ps.size()) +
                                                " tensors (visionParameters order), got " +
                                                std::to_string(arr.Length()));
  std::vector<js::View<float>> host;
  for (size_t i = 0; i < ps.size(); ++i)
    host.push_back(
        js::f32(arr.Get(static_cast<uint32_t>(i)), fn, ps[i].name.c_str(), ps[i].numel(), "its shape", kFinite));
  const std::vector<ImageGrid> grids = parse_image_grids(info[2], c.merge, fn);
  auto pixels = js::f32(info[1], fn, "pixels", patch_count(grids) * c.patch_inputs(), "patches*patchInputs", kFinite);
  TowerRun run;
  run.be = &tower_backend(info[options_at], fn);
  std::vector<const float*> params;
  for (size_t i = 0; i < ps.size(); ++i) params.push_back(run.in(host[i].data, ps[i].numel()));
  run.tower = std::make_unique<VisionTower>(*run.be, c);
  run.tower->forward(params, pixels.data, grids);  // the pixels stay host memory: the tower uploads them
  return run;
}

// (params, pixels, grids, config, options?) -> the outputs; options.backend: "cpu" (the default) or "cuda".
Napi::Value VisionTowerForward(const Napi::CallbackInfo& info) {
  TowerRun run = run_tower(info, "visionTowerForward", 4);
  const VisionTower* tower = run.tower.get();
  Napi::Env env = info.Env();
  const VisionConfig c = parse_vision_config(info[3], "visionTowerForward");
  auto arr = [&](const float* v, int64_t rows, int64_t dim) { return run.out(env, v, rows * dim); };
  auto patches = [&](const float* v) { return arr(v, tower->patches(), c.hidden); };
  auto tokens = [&](const float* v) { return arr(v, tower->tokens(), c.out_hidden); };
  Napi::Object r = Napi::Object::New(env);
  r.Set("merged", tokens(tower->merged()));
  r.Set("patchEmbed", patches(tower->patch_embed()));
  Napi::Array blocks = Napi::Array::New(env), deep = Napi::Array::New(env);
  for (int64_t i = 0; i < c.depth; ++i) blocks.Set(static_cast<uint32_t>(i), patches(tower->block_output(i)));
  for (size_t j = 0; j < c.deepstack_indexes.size(); ++j)
    deep.Set(static_cast<uint32_t>(j), tokens(tower->deepstack(j)));
  r.Set("blocks", blocks);
  r.Set("deepstack", deep);
  return r;
}

// (params, pixels, grids, config, dMerged, dDeepstack[], options?) -> gradients in visionParameters order.
Napi::Value VisionTowerBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "visionTowerBackward";
  TowerRun run = run_tower(info, fn, 6);
  VisionTower* tower = run.tower.get();
  const VisionConfig c = parse_vision_config(info[3], fn);
  const int64_t out_len = tower->tokens() * c.out_hidden;
  auto d_merged = js::f32(info[4], fn, "dMerged", out_len, "tokens*outHiddenSize", kFinite);
  std::vector<const float*> d_deep;
  if (!info[5].IsArray()) throw Napi::TypeError::New(info.Env(), fn + ": dDeepstack must be an array");
  Napi::Array dd = info[5].As<Napi::Array>();
  if (dd.Length() != c.deepstack_indexes.size())
    throw Napi::RangeError::New(info.Env(), fn + ": dDeepstack must hold one array per deepstack merger");
  for (uint32_t j = 0; j < dd.Length(); ++j)
    d_deep.push_back(
        run.in(js::f32(dd.Get(j), fn, "dDeepstack[j]", out_len, "tokens*outHiddenSize", kFinite).data, out_len));
  Napi::Env env = info.Env();
  const std::vector<VisionParam> ps = vision_parameters(c);
  Napi::Array grads = Napi::Array::New(env, ps.size());
  std::vector<BackendArray<float>> on_backend;  // the gradients in backend memory, off the CPU
  std::vector<float*> g;
  for (size_t i = 0; i < ps.size(); ++i) {
    auto a = zeros(env, ps[i].numel());
    grads.Set(static_cast<uint32_t>(i), a);
    if (run.on_cpu()) {
      g.push_back(a.Data());
    } else {
      on_backend.emplace_back(*run.be, ps[i].numel());
      g.push_back(on_backend.back().get());
    }
  }
  tower->backward(g, run.in(d_merged.data, out_len), d_deep);
  if (!run.on_cpu())
    for (size_t i = 0; i < ps.size(); ++i)
      run.be->to_host(grads.Get(static_cast<uint32_t>(i)).As<Napi::Float32Array>().Data(), g[i],
                      sizeof(float) * static_cast<size_t>(ps[i].numel()));
  return grads;
}

}  // namespace

void init_vision(Napi::Env env, Napi::Object exports) {
  exports.Set("visionParameters", Napi::Function::New(env, VisionParameters, "visionParameters"));
  exports.Set("visionTowerForward", Napi::Function::New(env, VisionTowerForward, "visionTowerForward"));
  exports.Set("visionTowerBackward", Napi::Function::New(env, VisionTowerBackward, "visionTowerBackward"));
}

}  // namespace medix::bindings
