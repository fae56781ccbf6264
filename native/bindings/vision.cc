// N-API face of the Qwen3-VL vision ops (layernorm, gelu, 2D rotary, position table) and of the whole
// vision tower (native/model/qwen3_vl_vision.h). Synchronous; arguments are checked before any memory
// is touched; backward functions return gradients accumulated into fresh zeroed arrays.
#include <cstdint>
#include <string>
#include <vector>

#include "../model/qwen3_vl_vision.h"
#include "../ops/gelu.h"
#include "../ops/layernorm.h"
#include "../ops/vision_pos_embed.h"
#include "../ops/vision_rope.h"
#include "registry.h"
#include "vision_config.h"

namespace medix::bindings {
namespace {

constexpr int64_t kMaxRows = (int64_t(1) << 31) - 1;
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxGrid = 1 << 16;
const bool kFinite = true;

Napi::Float32Array zeros(Napi::Env env, int64_t n) { return Napi::Float32Array::New(env, static_cast<size_t>(n)); }

// ---------------------------------------------------------------------------------------------
// LayerNorm

Napi::Value LayernormForward(const Napi::CallbackInfo& info) {
  const std::string fn = "layernormForward";
  Napi::Object o = js::object(info[3], fn, "options");
  const int64_t rows = js::integer(o, "rows", fn, 1, kMaxRows), dim = js::integer(o, "dim", fn, 1, kMaxDim);
  const double eps = js::number(o, "eps", fn);
  if (!(eps > 0)) throw Napi::RangeError::New(info.Env(), fn + ": option 'eps' must be > 0");
  auto x = js::f32(info[0], fn, "x", rows * dim, "rows*dim", kFinite);
  auto w = js::f32(info[1], fn, "w", dim, "dim", kFinite);
  auto b = js::f32(info[2], fn, "b", dim, "dim", kFinite);
  Napi::Env env = info.Env();
  auto out = zeros(env, rows * dim), mean = zeros(env, rows), rstd = zeros(env, rows);
  cpu::layernorm_forward(out.Data(), mean.Data(), rstd.Data(), x.data, w.data, b.data, rows, dim,
                         static_cast<float>(eps));
  Napi::Object r = Napi::Object::New(env);
  r.Set("out", out);
  r.Set("mean", mean);
  r.Set("rstd", rstd);
  return r;
}

Napi::Value LayernormBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "layernormBackward";
  Napi::Object o = js::object(info[5], fn, "options");
  const int64_t rows = js::integer(o, "rows", fn, 1, kMaxRows), dim = js::integer(o, "dim", fn, 1, kMaxDim);
  auto dout = js::f32(info[0], fn, "dout", rows * dim, "rows*dim", kFinite);
  auto x = js::f32(info[1], fn, "x", rows * dim, "rows*dim", kFinite);
  auto w = js::f32(info[2], fn, "w", dim, "dim", kFinite);
  auto mean = js::f32(info[3], fn, "mean", rows, "rows", kFinite);
  auto rstd = js::f32(info[4], fn, "rstd", rows, "rows", kFinite);
  Napi::Env env = info.Env();
  auto dx = zeros(env, rows * dim), dw = zeros(env, dim), db = zeros(env, dim);
  cpu::layernorm_backward(dx.Data(), dw.Data(), db.Data(), dout.data, x.data, w.data, mean.data, rstd.data, rows, dim);
  Napi::Object r = Napi::Object::New(env);
  r.Set("dx", dx);
  r.Set("dw", dw);
  r.Set("db", db);
  return r;
}

// ---------------------------------------------------------------------------------------------
// GELU

cpu::GeluKind gelu_kind(const Napi::Value& v, const std::string& fn) {
  Napi::Object o = js::object(v, fn, "options");
  return js::choice_or(o, "kind", fn, {"tanh", "erf"}, 0) == 0 ? cpu::GeluKind::kTanh : cpu::GeluKind::kErf;
}

Napi::Value GeluForward(const Napi::CallbackInfo& info) {
  const std::string fn = "geluForward";
  const cpu::GeluKind kind = gelu_kind(info[1], fn);
  auto x = js::f32(info[0], fn, "x", -1, nullptr, kFinite);
  auto out = zeros(info.Env(), static_cast<int64_t>(x.length));
  cpu::gelu_forward(out.Data(), x.data, static_cast<int64_t>(x.length), kind);
  return out;
}

Napi::Value GeluBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "geluBackward";
  const cpu::GeluKind kind = gelu_kind(info[2], fn);
  auto x = js::f32(info[1], fn, "x", -1, nullptr, kFinite);
  const int64_t n = static_cast<int64_t>(x.length);
  auto dout = js::f32(info[0], fn, "dout", n, "x.length", kFinite);
  auto dx = zeros(info.Env(), n);
  cpu::gelu_backward(dx.Data(), dout.data, x.data, n, kind);
  return dx;
}

// ---------------------------------------------------------------------------------------------
// Vision rotary: (x or dout, coords, {T, heads, headDim, theta})

struct RopeArgs {
  int64_t T, heads, D;
  float theta;
};

RopeArgs rope_args(const Napi::Value& v, const std::string& fn) {
  Napi::Object o = js::object(v, fn, "options");
  RopeArgs a{js::integer(o, "T", fn, 1, kMaxRows), js::integer(o, "heads", fn, 1, 4096),
             js::integer(o, "headDim", fn, 4, 65536), static_cast<float>(js::number_or(o, "theta", fn, 10000.0))};
  if (a.D % 4 != 0) throw Napi::RangeError::New(v.Env(), fn + ": option 'headDim' must be a multiple of 4");
  return a;
}

Napi::Value VisionRope(const Napi::CallbackInfo& info, bool forward) {
  const std::string fn = forward ? "visionRopeForward" : "visionRopeBackward";
  const RopeArgs a = rope_args(info[2], fn);
  auto x = js::f32(info[0], fn, forward ? "x" : "dout", a.T * a.heads * a.D, "T*heads*headDim", kFinite);
  auto coords = js::i32(info[1], fn, "coords", 2 * a.T, "2*T");
  auto out = zeros(info.Env(), a.T * a.heads * a.D);
  if (forward)
    cpu::vision_rope_forward(out.Data(), x.data, coords.data, a.T, a.heads, a.D, a.theta);
  else
    cpu::vision_rope_backward(out.Data(), x.data, coords.data, a.T, a.heads, a.D, a.theta);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Grids: Int32Array [n_images * 3] of (t, h, w), h and w multiples of merge.

}  // namespace

std::vector<ImageGrid> parse_image_grids(const Napi::Value& v, int64_t merge, const std::string& fn) {
  auto g = js::i32(v, fn, "grids");
  if (g.length == 0 || g.length % 3 != 0)
    throw Napi::RangeError::New(v.Env(),
                                fn + ": grids must hold (t, h, w) triples, got length " + std::to_string(g.length));
  std::vector<ImageGrid> out;
  for (size_t i = 0; i < g.length; i += 3) {
    ImageGrid grid{g.data[i], g.data[i + 1], g.data[i + 2]};
    if (grid.t < 1 || grid.h < merge || grid.w < merge || grid.h % merge || grid.w % merge || grid.h > kMaxGrid ||
        grid.w > kMaxGrid || grid.t > kMaxGrid)
      throw Napi::RangeError::New(v.Env(), fn + ": grid " + std::to_string(i / 3) + " (" + std::to_string(grid.t) +
                                               ", " + std::to_string(grid.h) + ", " + std::to_string(grid.w) +
                                               ") must have t >= 1 and h, w positive multiples of merge (" +
                                               std::to_string(merge) + ")");
    out.push_back(grid);
  }
  return out;
}

namespace {

int64_t patch_count(const std::vector<ImageGrid>& grids) {
  int64_t n = 0;
  for (const ImageGrid& g : grids) n += g.t * g.h * g.w;
  return n;
}

}  // namespace

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

Napi::Value VisionPosEmbed(const Napi::CallbackInfo& info, bool forward) {
  const std::string fn = forward ? "visionPosEmbedForward" : "visionPosEmbedBackward";
  Napi::Object o = js::object(info[2], fn, "options");
  const int64_t merge = js::integer(o, "merge", fn, 1, 64), side = js::integer(o, "side", fn, 1, 65536);
  const int64_t dim = js::integer(o, "dim", fn, 1, kMaxDim);
  const std::vector<ImageGrid> grids = parse_image_grids(info[1], merge, fn);
  const int64_t N = patch_count(grids);
  if (forward) {
    auto table = js::f32(info[0], fn, "table", side * side * dim, "side*side*dim", kFinite);
    auto out = zeros(info.Env(), N * dim);
    cpu::vision_pos_embed_forward(out.Data(), table.data, grids, merge, side, dim);
    return out;
  }
  auto dout = js::f32(info[0], fn, "dout", N * dim, "patches*dim", kFinite);
  auto dtable = zeros(info.Env(), side * side * dim);
  cpu::vision_pos_embed_backward(dtable.Data(), dout.data, grids, merge, side, dim);
  return dtable;
}

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

// (params, pixels, grids, config): runs the forward and returns the tower ready for backward.
std::unique_ptr<VisionTower> run_tower(const Napi::CallbackInfo& info, const std::string& fn) {
  const VisionConfig c = parse_vision_config(info[3], fn);
  const std::vector<VisionParam> ps = vision_parameters(c);
  if (!info[0].IsArray()) throw Napi::TypeError::New(info.Env(), fn + ": params must be an array of Float32Array");
  Napi::Array arr = info[0].As<Napi::Array>();
  if (arr.Length() != ps.size())
    throw Napi::RangeError::New(info.Env(), fn + ": params must hold " + std::to_string(ps.size()) +
                                                " tensors (visionParameters order), got " +
                                                std::to_string(arr.Length()));
  std::vector<const float*> params;
  for (size_t i = 0; i < ps.size(); ++i)
    params.push_back(
        js::f32(arr.Get(static_cast<uint32_t>(i)), fn, ps[i].name.c_str(), ps[i].numel(), "its shape", kFinite).data);
  const std::vector<ImageGrid> grids = parse_image_grids(info[2], c.merge, fn);
  auto pixels = js::f32(info[1], fn, "pixels", patch_count(grids) * c.patch_inputs(), "patches*patchInputs", kFinite);
  auto tower = std::make_unique<VisionTower>(c);
  tower->forward(params, pixels.data, grids);
  return tower;
}

Napi::Value VisionTowerForward(const Napi::CallbackInfo& info) {
  auto tower = run_tower(info, "visionTowerForward");
  Napi::Env env = info.Env();
  auto arr = [&](const std::vector<float>& v) { return js::new_f32(env, v.data(), v.size()); };
  Napi::Object r = Napi::Object::New(env);
  r.Set("merged", arr(tower->merged()));
  r.Set("patchEmbed", arr(tower->patch_embed()));
  const VisionConfig c = parse_vision_config(info[3], "visionTowerForward");
  Napi::Array blocks = Napi::Array::New(env), deep = Napi::Array::New(env);
  for (int64_t i = 0; i < c.depth; ++i) blocks.Set(static_cast<uint32_t>(i), arr(tower->block_output(i)));
  for (size_t j = 0; j < c.deepstack_indexes.size(); ++j) deep.Set(static_cast<uint32_t>(j), arr(tower->deepstack(j)));
  r.Set("blocks", blocks);
  r.Set("deepstack", deep);
  return r;
}

// (params, pixels, grids, config, dMerged, dDeepstack[]) -> gradients in visionParameters order.
Napi::Value VisionTowerBackward(const Napi::CallbackInfo& info) {
  const std::string fn = "visionTowerBackward";
  auto tower = run_tower(info, fn);
  const VisionConfig c = parse_vision_config(info[3], fn);
  const int64_t out_len = tower->tokens() * c.out_hidden;
  auto d_merged = js::f32(info[4], fn, "dMerged", out_len, "tokens*outHiddenSize", kFinite);
  std::vector<const float*> d_deep;
  if (!info[5].IsArray()) throw Napi::TypeError::New(info.Env(), fn + ": dDeepstack must be an array");
  Napi::Array dd = info[5].As<Napi::Array>();
  if (dd.Length() != c.deepstack_indexes.size())
    throw Napi::RangeError::New(info.Env(), fn + ": dDeepstack must hold one array per deepstack merger");
  for (uint32_t j = 0; j < dd.Length(); ++j)
    d_deep.push_back(js::f32(dd.Get(j), fn, "dDeepstack[j]", out_len, "tokens*outHiddenSize", kFinite).data);
  Napi::Env env = info.Env();
  const std::vector<VisionParam> ps = vision_parameters(c);
  Napi::Array grads = Napi::Array::New(env, ps.size());
  std::vector<float*> g;
  for (size_t i = 0; i < ps.size(); ++i) {
    auto a = zeros(env, ps[i].numel());
    grads.Set(static_cast<uint32_t>(i), a);
    g.push_back(a.Data());
  }
  tower->backward(g, d_merged.data, d_deep);
  return grads;
}

}  // namespace

void init_vision(Napi::Env env, Napi::Object exports) {
  exports.Set("layernormForward", Napi::Function::New(env, LayernormForward, "layernormForward"));
  exports.Set("layernormBackward", Napi::Function::New(env, LayernormBackward, "layernormBackward"));
  exports.Set("geluForward", Napi::Function::New(env, GeluForward, "geluForward"));
  exports.Set("geluBackward", Napi::Function::New(env, GeluBackward, "geluBackward"));
  exports.Set("visionRopeForward",
              Napi::Function::New(
                  env, [](const Napi::CallbackInfo& i) { return VisionRope(i, true); }, "visionRopeForward"));
  exports.Set("visionRopeBackward",
              Napi::Function::New(
                  env, [](const Napi::CallbackInfo& i) { return VisionRope(i, false); }, "visionRopeBackward"));
  exports.Set("visionPosEmbedForward",
              Napi::Function::New(
                  env, [](const Napi::CallbackInfo& i) { return VisionPosEmbed(i, true); }, "visionPosEmbedForward"));
  exports.Set("visionPosEmbedBackward",
              Napi::Function::New(
                  env, [](const Napi::CallbackInfo& i) { return VisionPosEmbed(i, false); }, "visionPosEmbedBackward"));
  exports.Set("visionParameters", Napi::Function::New(env, VisionParameters, "visionParameters"));
  exports.Set("visionTowerForward", Napi::Function::New(env, VisionTowerForward, "visionTowerForward"));
  exports.Set("visionTowerBackward", Napi::Function::New(env, VisionTowerBackward, "visionTowerBackward"));
}

}  // namespace medix::bindings
