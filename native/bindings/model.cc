// N-API face of the Qwen3 model: a JS class wrapping medix::Qwen3Model. Everything that touches the
// model's backend runs on the model's own thread (ModelThread, model_handle.h). Heavy calls (forward,
// backward, optimizerStep) return promises; a model runs one such call at a time and rejects
// overlapping calls instead of racing on its buffers.
#include <atomic>
#include <cmath>
#include <memory>
#include <string>

#include "../core/error.h"
#include "../model/qwen3.h"
#if defined(MEDIX_HAVE_CUDA)
#include "../cuda/cuda_backend.h"
#include "../cuda/nccl.h"
#endif
#include "model_handle.h"
#include "registry.h"
#include "vision_config.h"

namespace medix::bindings {
namespace {

const char* kCls = "Qwen3Model";
// Marks JS objects wrapping a ModelWrap, so model_handle can unwrap them safely.
const napi_type_tag kModelTag = {0x6d656469785f7177ull, 0x656e335f6d6f646cull};

Qwen3Config parse_config(const Napi::Object& o) {
  const std::string fn = std::string(kCls) + " config";
  Qwen3Config c;
  const int64_t big = int64_t(1) << 31;
  c.vocab = js::integer(o, "vocabSize", fn, 1, big - 1);
  c.hidden = js::integer(o, "hiddenSize", fn, 1, big);
  c.intermediate = js::integer(o, "intermediateSize", fn, 1, big);
  c.layers = js::integer(o, "numLayers", fn, 1, 4096);
  c.heads = js::integer(o, "numHeads", fn, 1, 4096);
  c.kv_heads = js::integer(o, "numKvHeads", fn, 1, 4096);
  c.head_dim = js::integer(o, "headDim", fn, 2, 4096);
  c.rope_theta = static_cast<float>(js::number_or(o, "ropeTheta", fn, 1e6));
  c.rms_eps = static_cast<float>(js::number_or(o, "rmsEps", fn, 1e-6));
  c.tie_embeddings = js::boolean_or(o, "tieEmbeddings", fn, false);
  c.mrope_interleaved = js::boolean_or(o, "mropeInterleaved", fn, false);
  Napi::Value sec = o.Get("mropeSection");
  if (!sec.IsUndefined() && !sec.IsNull()) {
    if (!sec.IsArray()) throw Napi::TypeError::New(o.Env(), fn + ": mropeSection must be an array of 3 integers");
    auto arr = sec.As<Napi::Array>();
    for (uint32_t i = 0; i < arr.Length(); ++i) {
      Napi::Value v = arr.Get(i);
      if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), fn + ": mropeSection must hold integers");
      c.mrope_section.push_back(v.As<Napi::Number>().Int64Value());
    }
  }
  c.experts = js::integer_or(o, "numExperts", fn, 0, 1 << 16, 0);
  if (c.experts > 0) {
    c.experts_per_token = js::integer(o, "numExpertsPerTok", fn, 1, c.experts);
    c.moe_intermediate = js::integer(o, "moeIntermediateSize", fn, 1, big);
    c.decoder_sparse_step = js::integer_or(o, "decoderSparseStep", fn, 1, 4096, 1);
    c.norm_topk_prob = js::boolean_or(o, "normTopkProb", fn, true);
    Napi::Value only = o.Get("mlpOnlyLayers");
    if (!only.IsUndefined() && !only.IsNull()) {
      if (!only.IsArray()) throw Napi::TypeError::New(o.Env(), fn + ": mlpOnlyLayers must be an array of integers");
      auto arr = only.As<Napi::Array>();
      for (uint32_t i = 0; i < arr.Length(); ++i) {
        Napi::Value v = arr.Get(i);
        if (!v.IsNumber()) throw Napi::TypeError::New(o.Env(), fn + ": mlpOnlyLayers must hold integers");
        c.mlp_only_layers.push_back(v.As<Napi::Number>().Int64Value());
      }
    }
  }
  Napi::Value prefix = o.Get("prefix");
  if (prefix.IsString()) c.prefix = prefix.As<Napi::String>().Utf8Value();
  Napi::Value vision = o.Get("vision");  // Qwen3-VL: the tower's config and the image token
  if (!vision.IsUndefined() && !vision.IsNull()) {
    c.vision = parse_vision_config(vision, fn + ": vision");
    c.image_token_id = static_cast<int32_t>(js::integer(o, "imageTokenId", fn, 0, big - 1));
  }
  c.validate();
  return c;
}

// The backend options.device names ("cpu", the default, or "cuda").
Backend& model_backend(const Napi::Object& opts, const std::string& fn) {
  if (js::choice_or(opts, "device", fn, {"cpu", "cuda"}, 0) == 0) return cpu_backend();
#if defined(MEDIX_HAVE_CUDA)
  return cuda::backend();
#else
  fail(fn,
       ": device cuda: this build of medix has no CUDA (nvcc was not found when the addon was built, or "
       "MEDIX_NO_CUDA=1)");
#endif
}

class ModelWrap : public Napi::ObjectWrap<ModelWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, kCls,
        {InstanceMethod("params", &ModelWrap::Params), InstanceMethod("getParam", &ModelWrap::GetParam),
         InstanceMethod("setParam", &ModelWrap::SetParam), InstanceMethod("getGrad", &ModelWrap::GetGrad),
         InstanceMethod("forward", &ModelWrap::Forward), InstanceMethod("backward", &ModelWrap::Backward),
         InstanceMethod("zeroGrad", &ModelWrap::ZeroGrad), InstanceMethod("optimizerStep", &ModelWrap::OptimizerStep),
         InstanceMethod("getOptimizerState", &ModelWrap::GetOptimizerState),
         InstanceMethod("setOptimizerState", &ModelWrap::SetOptimizerState),
         InstanceMethod("setDataParallel", &ModelWrap::SetDataParallel),
         InstanceMethod("optimizerShard", &ModelWrap::OptimizerShard),
         InstanceMethod("setRecompute", &ModelWrap::SetRecompute), InstanceMethod("activationPlan", &ModelWrap::Plan),
         InstanceMethod("numParams", &ModelWrap::NumParams),
         InstanceMethod("setVisionFrozen", &ModelWrap::SetVisionFrozen), InstanceMethod("routing", &ModelWrap::Routing),
         InstanceMethod("setAuxLossWeight", &ModelWrap::SetAuxLossWeight),
         InstanceMethod("workThreads", &ModelWrap::WorkThreads)});
  }

  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModelWrap>(info) {
    Napi::Env env = info.Env();
    const std::string fn = std::string("new ") + kCls;
    Qwen3Config cfg = parse_config(js::object(info[0], fn, "config"));
    Napi::Object opts = info[1].IsUndefined() ? Napi::Object::New(env) : js::object(info[1], fn, "options");
    const int64_t seed = js::integer_or(opts, "seed", fn, 0, (int64_t(1) << 53), 0);
    const double std = js::number_or(opts, "initStd", fn, 0.02);
    const bool recompute = js::boolean_or(opts, "recompute", fn, false);
    Backend& be = model_backend(opts, fn);
    thread_ = std::make_shared<ModelThread>(be);
    thread_->call([&] {
      model_ = std::make_unique<Qwen3Model>(cfg, be, static_cast<uint64_t>(seed), static_cast<float>(std));
      model_->set_recompute(recompute);
    });
    info.This().As<Napi::Object>().TypeTag(&kModelTag);
  }
  ~ModelWrap() override {
    thread_->call_quietly([this] { model_.reset(); });
  }

  ModelHandle handle() { return {model_.get(), busy_, thread_}; }

 private:
  // Claims the model for one async call; throws if another is running. The claim is released on
  // the main thread when the call's promise settles, so "busy" is deterministic from JS.
  void claim(const char* what) {
    bool expected = false;
    if (!busy_->compare_exchange_strong(expected, true))
      throw std::runtime_error(std::string(kCls) + "." + what +
                               ": the model is busy with another call; await it before starting the next");
  }
  void check_idle(const char* what) {
    if (busy_->load())
      throw std::runtime_error(std::string(kCls) + "." + what +
                               ": the model is busy with an async call; await it first");
  }

  Napi::Value Params(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto out = Napi::Array::New(env, model_->params().size());
    uint32_t i = 0;
    for (const auto& p : model_->params()) {
      auto o = Napi::Object::New(env);
      o.Set("name", p.name);
      auto shape = Napi::Array::New(env, p.shape.size());
      for (uint32_t d = 0; d < p.shape.size(); ++d) shape.Set(d, Napi::Number::New(env, double(p.shape[d])));
      o.Set("shape", shape);
      o.Set("numel", Napi::Number::New(env, double(p.numel)));
      out.Set(i++, o);
    }
    return out;
  }

  const ParamInfo& named(const Napi::CallbackInfo& info, const char* fn) {
    if (!info[0].IsString()) throw Napi::TypeError::New(info.Env(), std::string(fn) + ": name must be a string");
    return model_->param(info[0].As<Napi::String>().Utf8Value());
  }

  Napi::Value SetVisionFrozen(const Napi::CallbackInfo& info) {
    check_idle("setVisionFrozen");
    if (!info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "setVisionFrozen: frozen must be a boolean");
    model_->set_vision_frozen(info[0].As<Napi::Boolean>().Value());
    return info.Env().Undefined();
  }

  Napi::Value GetParam(const Napi::CallbackInfo& info) {
    check_idle("getParam");
    const ParamInfo& p = named(info, "getParam");
    auto arr = Napi::Float32Array::New(info.Env(), p.numel);
    thread_->call([&] { model_->get_param(p, arr.Data()); });
    return arr;
  }

  Napi::Value SetParam(const Napi::CallbackInfo& info) {
    check_idle("setParam");
    const ParamInfo& p = named(info, "setParam");
    const std::string fn = "setParam(" + p.name + ")";
    auto data = js::f32(info[1], fn, "data", p.numel, "numel of the parameter", true);
    thread_->call([&] { model_->set_param(p, data.data); });
    return info.Env().Undefined();
  }

  Napi::Value GetGrad(const Napi::CallbackInfo& info) {
    check_idle("getGrad");
    const ParamInfo& p = named(info, "getGrad");
    auto arr = Napi::Float32Array::New(info.Env(), p.numel);
    thread_->call([&] { model_->get_grad(p, arr.Data()); });
    return arr;
  }

  Napi::Value Forward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string fn = std::string(kCls) + ".forward";
    const Qwen3Config& c = model_->config();
    Napi::Object batch = js::object(info[0], fn, "batch");
    Napi::Object opts = info[1].IsUndefined() ? Napi::Object::New(env) : js::object(info[1], fn, "options");
    auto tokens = js::i32(batch.Get("tokens"), fn, "batch.tokens");
    const int64_t T = static_cast<int64_t>(tokens.length);
    if (T == 0) throw Napi::RangeError::New(env, fn + ": batch.tokens is empty");
    js::check_ids(tokens, 0, static_cast<int32_t>(c.vocab), fn, "batch.tokens");
    auto cu = js::i32(batch.Get("cuSeqlens"), fn, "batch.cuSeqlens");
    js::check_cu_seqlens(cu, T, fn, "batch.cuSeqlens");
    auto targets = js::i32(batch.Get("targets"), fn, "batch.targets", T, "one per token");
    js::check_ids(targets, -1, static_cast<int32_t>(c.vocab), fn, "batch.targets");
    const int P = c.position_components();
    js::View<int32_t> pos;
    Napi::Value posv = batch.Get("positions");
    if (!posv.IsUndefined() && !posv.IsNull()) {
      pos = js::i32(posv, fn, "batch.positions", P * T, P == 1 ? "tokens" : "3*tokens (t, h, w rows)");
      js::check_ids(pos, 0, INT32_MAX, fn, "batch.positions");
    }
    ForwardOptions o;
    o.temperature = static_cast<float>(js::number_or(opts, "temperature", fn, 1.0));
    if (!(o.temperature > 0)) throw Napi::RangeError::New(env, fn + ": option 'temperature' must be > 0");
    o.entropy = js::boolean_or(opts, "entropy", fn, false);
    o.training = js::boolean_or(opts, "training", fn, false);
    o.logits = js::boolean_or(opts, "logits", fn, false);

    struct Job {
      std::vector<int32_t> tokens, cu, targets, pos;
      std::vector<float> logp, entropy, logits, pixels;
      std::vector<ImageGrid> grids;
    };
    auto job = std::make_shared<Job>();
    Napi::Value gridv = batch.Get("imageGrids");  // Qwen3-VL: (t, h, w) per image and its pixel rows
    if (!gridv.IsUndefined() && !gridv.IsNull()) {
      if (!c.vision) throw Napi::TypeError::New(env, fn + ": batch.imageGrids given but the model has no vision tower");
      ImageInputs images = parse_image_inputs(gridv, batch.Get("pixels"), *c.vision, fn, "batch");
      job->grids = std::move(images.grids);
      job->pixels = std::move(images.pixels);
    }
    job->tokens.assign(tokens.data, tokens.data + T);
    job->cu.assign(cu.data, cu.data + cu.length);
    job->targets.assign(targets.data, targets.data + T);
    if (pos.data) job->pos.assign(pos.data, pos.data + pos.length);
    job->logp.resize(T);
    if (o.entropy) job->entropy.resize(T);
    if (o.logits) job->logits.resize(static_cast<size_t>(T) * c.vocab);
    claim("forward");
    Qwen3Model* m = model_.get();
    auto busy = busy_;
    return thread_->async(
        env,
        [job, m, o, T] {
          PackedBatch b{T,
                        job->tokens.data(),
                        job->cu.data(),
                        static_cast<int64_t>(job->cu.size()) - 1,
                        job->targets.data(),
                        job->pos.empty() ? nullptr : job->pos.data(),
                        job->pixels.data(),
                        job->grids.data(),
                        static_cast<int64_t>(job->grids.size())};
          m->forward(b, o, job->logp.data(), o.entropy ? job->entropy.data() : nullptr,
                     o.logits ? job->logits.data() : nullptr);
        },
        [job, o](Napi::Env env) -> Napi::Value {
          auto out = Napi::Object::New(env);
          out.Set("logp", js::new_f32(env, job->logp.data(), job->logp.size()));
          if (o.entropy) out.Set("entropy", js::new_f32(env, job->entropy.data(), job->entropy.size()));
          if (o.logits) out.Set("logits", js::new_f32(env, job->logits.data(), job->logits.size()));
          return out;
        },
        {info.This()}, [busy] { busy->store(false); });
  }

  Napi::Value Backward(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string fn = std::string(kCls) + ".backward";
    Napi::Object grads = js::object(info[0], fn, "grads");
    auto dlogp = js::f32(grads.Get("dlogp"), fn, "grads.dlogp", -1, nullptr, true);
    auto dent = js::f32_opt(grads.Get("dentropy"), fn, "grads.dentropy", static_cast<int64_t>(dlogp.length),
                            "one per token", true);
    auto a = std::make_shared<std::vector<float>>(dlogp.data, dlogp.data + dlogp.length);
    auto e = std::make_shared<std::vector<float>>(dent.data, dent.data + dent.length);
    claim("backward");
    Qwen3Model* m = model_.get();
    auto busy = busy_;
    return thread_->async(
        env, [a, e, m] { m->backward(a->data(), static_cast<int64_t>(a->size()), e->empty() ? nullptr : e->data()); },
        [](Napi::Env env) -> Napi::Value { return env.Undefined(); }, {info.This()}, [busy] { busy->store(false); });
  }

  Napi::Value ZeroGrad(const Napi::CallbackInfo& info) {
    check_idle("zeroGrad");
    thread_->call([&] { model_->zero_grad(); });
    return info.Env().Undefined();
  }

  Napi::Value OptimizerStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string fn = std::string(kCls) + ".optimizerStep";
    Napi::Object o = js::object(info[0], fn, "options");
    AdamWConfig cfg;  // its defaults (adamw.h) for the keys not given
    cfg.lr = static_cast<float>(js::number(o, "lr", fn));
    cfg.beta1 = static_cast<float>(js::number_or(o, "beta1", fn, cfg.beta1));
    cfg.beta2 = static_cast<float>(js::number_or(o, "beta2", fn, cfg.beta2));
    cfg.eps = static_cast<float>(js::number_or(o, "eps", fn, cfg.eps));
    cfg.weight_decay = static_cast<float>(js::number_or(o, "weightDecay", fn, cfg.weight_decay));
    const float max_norm = static_cast<float>(js::number_or(o, "maxGradNorm", fn, 0));
    try {
      check_adamw_config(cfg);
    } catch (const Error& e) {
      throw Napi::RangeError::New(env, fn + ": " + e.what());
    }
    std::vector<bool> decay(model_->params().size(), true);
    Napi::Value mask = o.Get("decay");
    if (!mask.IsUndefined()) {
      if (!mask.IsArray() || mask.As<Napi::Array>().Length() != decay.size())
        throw Napi::TypeError::New(env, fn + ": option 'decay' must be an array of " + std::to_string(decay.size()) +
                                            " booleans (one per parameter, in params() order)");
      auto arr = mask.As<Napi::Array>();
      for (uint32_t i = 0; i < decay.size(); ++i) decay[i] = arr.Get(i).ToBoolean().Value();
    }
    claim("optimizerStep");
    Qwen3Model* m = model_.get();
    auto busy = busy_;
    auto result = std::make_shared<StepResult>();
    return thread_->async(
        env, [m, cfg, max_norm, decay, result] { *result = m->optimizer_step(cfg, max_norm, decay); },
        [result](Napi::Env env) -> Napi::Value {
          auto out = Napi::Object::New(env);
          out.Set("gradNorm", Napi::Number::New(env, result->grad_norm));
          out.Set("skipped", Napi::Boolean::New(env, result->skipped));
          out.Set("step", Napi::Number::New(env, double(result->step)));
          return out;
        },
        {info.This()}, [busy] { busy->store(false); });
  }

  Napi::Value GetOptimizerState(const Napi::CallbackInfo& info) {
    check_idle("getOptimizerState");
    Napi::Env env = info.Env();
    const auto n = static_cast<size_t>(model_->optimizer_floats());
    auto m = Napi::Float32Array::New(env, n);
    auto v = Napi::Float32Array::New(env, n);
    thread_->call([&] { model_->get_optimizer_state(m.Data(), v.Data()); });
    auto out = Napi::Object::New(env);
    out.Set("step", Napi::Number::New(env, double(model_->optimizer_steps())));
    out.Set("m", m);
    out.Set("v", v);
    return out;
  }

  Napi::Value SetOptimizerState(const Napi::CallbackInfo& info) {
    check_idle("setOptimizerState");
    const std::string fn = std::string(kCls) + ".setOptimizerState";
    Napi::Object o = js::object(info[0], fn, "state");
    const int64_t n = model_->optimizer_floats();
    const int64_t step = js::integer_or(o, "step", fn, 0, int64_t(1) << 53, -1);
    if (step < 0) throw Napi::TypeError::New(info.Env(), fn + ": state.step must be an integer >= 0");
    const char* what = model_->full_shard()       ? "the floats of this rank's shards"
                       : model_->world_size() > 1 ? "the floats of this rank's tensors"
                                                  : "num_params";
    auto m = js::f32(o.Get("m"), fn, "state.m", n, what, true);
    auto v = js::f32(o.Get("v"), fn, "state.v", n, what, true);
    thread_->call([&] { model_->set_optimizer_state(m.data, v.data, step); });
    return info.Env().Undefined();
  }

  Napi::Value SetDataParallel(const Napi::CallbackInfo& info) {
    check_idle("setDataParallel");
    // The ZeRO-1 exchange moves the model's buffers: MPI for host memory; on a GPU, NCCL (made here, the
    // same step on every rank), with MPI summing the host scalars.
    if (world().size() > 1 && &model_->backend() != &cpu_backend()) {
#if defined(MEDIX_HAVE_CUDA)
      if (std::string(model_->backend().name()) == "cuda") {
        thread_->call([&] { model_->set_data_parallel(cuda::nccl_world(), world()); });
        return info.Env().Undefined();
      }
#endif
      fail("setDataParallel: several processes train on device ", model_->backend().name(),
           " only with NCCL, which this build has not (built without CUDA); use device cpu");
    }
    model_->set_data_parallel(world());
    return info.Env().Undefined();
  }

  Napi::Value OptimizerShard(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const Shard& s = model_->owned();
    auto out = Napi::Object::New(env);
    out.Set("rank", Napi::Number::New(env, model_->rank()));
    out.Set("size", Napi::Number::New(env, model_->world_size()));
    out.Set("firstParam", Napi::Number::New(env, double(s.first_tensor)));
    out.Set("endParam", Napi::Number::New(env, double(s.end_tensor)));
    out.Set("numel", Napi::Number::New(env, double(model_->optimizer_floats())));
    return out;
  }

  Napi::Value SetRecompute(const Napi::CallbackInfo& info) {
    check_idle("setRecompute");
    if (!info[0].IsBoolean()) throw Napi::TypeError::New(info.Env(), "setRecompute: argument must be a boolean");
    const bool on = info[0].As<Napi::Boolean>().Value();
    thread_->call([&] { model_->set_recompute(on); });
    return info.Env().Undefined();
  }

  Napi::Value Plan(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const int64_t T = js::integer_arg(info[0], "activationPlan", "tokens", 1, int64_t(1) << 40);
    const bool training = info[1].IsUndefined() ? true : info[1].ToBoolean().Value();
    const int64_t patches =
        info[2].IsUndefined() ? 0 : js::integer_arg(info[2], "activationPlan", "imagePatches", 0, int64_t(1) << 40);
    ActivationPlan p = model_->plan(T, training, patches);
    auto out = Napi::Object::New(env);
    out.Set("tokens", Napi::Number::New(env, double(p.tokens)));
    out.Set("recompute", Napi::Boolean::New(env, p.recompute));
    out.Set("perLayerBytes", Napi::Number::New(env, double(p.per_layer_bytes)));
    out.Set("streamBytes", Napi::Number::New(env, double(p.stream_bytes)));
    out.Set("scratchBytes", Napi::Number::New(env, double(p.scratch_bytes)));
    out.Set("visionBytes", Napi::Number::New(env, double(p.vision_bytes)));
    out.Set("totalBytes", Napi::Number::New(env, double(p.total_bytes)));
    return out;
  }

  // The last forward's mixture-of-experts figures: {auxLoss: per sequence, expertLoad: tokens per
  // expert [sparse layers * experts], routerLogits: [sparse layers * T * E] when logits were asked}.
  Napi::Value Routing(const Napi::CallbackInfo& info) {
    check_idle("routing");
    Napi::Env env = info.Env();
    auto out = Napi::Object::New(env);
    const std::vector<double> aux = model_->aux_losses();
    auto a = Napi::Float64Array::New(env, aux.size());
    std::copy(aux.begin(), aux.end(), a.Data());
    out.Set("auxLoss", a);
    const std::vector<int64_t>& load = model_->expert_load();
    auto l = Napi::Float64Array::New(env, load.size());
    std::copy(load.begin(), load.end(), l.Data());
    out.Set("expertLoad", l);
    const std::vector<float>& rl = model_->router_logits();
    if (!rl.empty()) out.Set("routerLogits", js::new_f32(env, rl.data(), rl.size()));
    return out;
  }

  Napi::Value SetAuxLossWeight(const Napi::CallbackInfo& info) {
    check_idle("setAuxLossWeight");
    const double w = js::number_arg(info[0], std::string(kCls) + ".setAuxLossWeight", "weight");
    if (!std::isfinite(w)) throw Napi::RangeError::New(info.Env(), "setAuxLossWeight: weight must be finite");
    model_->set_aux_loss_weight(static_cast<float>(w));
    return info.Env().Undefined();
  }

  Napi::Value NumParams(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(model_->n_params()));
  }

  // The OS thread ids the model's backend work has run on (ModelThread), for the test of its thread.
  Napi::Value WorkThreads(const Napi::CallbackInfo& info) {
    const std::vector<int64_t> ids = thread_->work_threads();
    auto out = Napi::Array::New(info.Env(), ids.size());
    for (uint32_t i = 0; i < ids.size(); ++i) out.Set(i, Napi::Number::New(info.Env(), double(ids[i])));
    return out;
  }

  std::shared_ptr<ModelThread> thread_;  // before model_, which is made and destroyed on it
  std::unique_ptr<Qwen3Model> model_;
  std::shared_ptr<std::atomic<bool>> busy_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace

ModelHandle model_handle(const Napi::Value& v, const std::string& fn, const char* name) {
  if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kModelTag))
    throw Napi::TypeError::New(v.Env(), fn + ": " + name + " must be a native Qwen3Model (Model's handle)");
  return ModelWrap::Unwrap(v.As<Napi::Object>())->handle();
}

void init_model(Napi::Env env, Napi::Object exports) { exports.Set(kCls, ModelWrap::Define(env)); }

}  // namespace medix::bindings
