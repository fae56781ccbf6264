// N-API face of generation: a Qwen3Generator class (KV cache + step = cached forward and sampling,
// native/model/generator.h) and the sampler on its own (sampleLogits, samplingDistribution) for
// tests and tools. step() runs on the model's thread (model_handle.h) and claims the model's busy
// flag, so generation never overlaps a forward/backward/optimizer call on the same model.
#include <memory>
#include <vector>

#include "../model/generator.h"
#include "model_handle.h"
#include "registry.h"
#include "vision_config.h"

namespace medix::bindings {
namespace {

const char* kCls = "Qwen3Generator";

SamplerParams parse_sampler(const Napi::Value& v, const std::string& fn, const std::string& where) {
  const std::string f = fn + " (" + where + ")";
  Napi::Object o = js::object(v, f, "sampler params");
  SamplerParams p;
  p.temperature = static_cast<float>(js::number_or(o, "temperature", f, 1.0));
  p.top_k = static_cast<int32_t>(js::integer_or(o, "topK", f, -1, INT32_MAX, 0));
  p.top_p = static_cast<float>(js::number_or(o, "topP", f, 1.0));
  p.min_p = static_cast<float>(js::number_or(o, "minP", f, 0.0));
  p.repetition_penalty = static_cast<float>(js::number_or(o, "repetitionPenalty", f, 1.0));
  p.seed = static_cast<uint64_t>(js::integer_or(o, "seed", f, 0, int64_t(1) << 53, 0));
  p.stream = static_cast<uint64_t>(js::integer_or(o, "stream", f, 0, int64_t(1) << 53, 0));
  p.counter = static_cast<uint64_t>(js::integer_or(o, "counter", f, 0, int64_t(1) << 53, 0));
  check_sampler_params(p);
  return p;
}

std::vector<SamplerParams> parse_sampler_list(const Napi::Value& v, const std::string& fn, size_t expect) {
  if (!v.IsArray() || v.As<Napi::Array>().Length() != expect)
    throw Napi::TypeError::New(v.Env(), fn + ": sampling must be an array of " + std::to_string(expect) +
                                            " sampler params objects (one per logit row)");
  auto arr = v.As<Napi::Array>();
  std::vector<SamplerParams> out;
  for (uint32_t i = 0; i < expect; ++i)
    out.push_back(parse_sampler(arr.Get(i), fn, "sampling[" + std::to_string(i) + "]"));
  return out;
}

Napi::Object stats_object(Napi::Env env, const GeneratorStats& st) {
  auto o = Napi::Object::New(env);
  auto n = [&](const char* k, int64_t v) { o.Set(k, Napi::Number::New(env, double(v))); };
  n("sequences", st.cache.sequences);
  n("blocksTotal", st.cache.blocks_total);
  n("blocksFree", st.cache.blocks_free);
  n("forks", st.cache.forks);
  n("blockCopies", st.cache.block_copies);
  o.Set("cacheDtype", compute_dtype_name(st.cache.dtype));
  n("cacheBytes", st.cache.bytes);
  n("steps", st.steps);
  n("tokensComputed", st.tokens_computed);
  n("tokensSampled", st.tokens_sampled);
  return o;
}

class GeneratorWrap : public Napi::ObjectWrap<GeneratorWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, kCls,
        {InstanceMethod("addSequence", &GeneratorWrap::AddSequence), InstanceMethod("fork", &GeneratorWrap::Fork),
         InstanceMethod("free", &GeneratorWrap::Free), InstanceMethod("length", &GeneratorWrap::Length),
         InstanceMethod("stats", &GeneratorWrap::Stats), InstanceMethod("step", &GeneratorWrap::Step),
         InstanceMethod("close", &GeneratorWrap::Close)});
  }

  explicit GeneratorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<GeneratorWrap>(info) {
    const std::string fn = std::string("new ") + kCls;
    model_ = model_handle(info[0], fn, "model");
    model_ref_ = Napi::Persistent(info[0].As<Napi::Object>());  // the model outlives its generator
    Napi::Object opts = js::object(info[1], fn, "options");
    const int64_t block_size = js::integer_or(opts, "blockSize", fn, 1, 4096, 16);
    const int64_t n_blocks = js::integer(opts, "numBlocks", fn, 1, int64_t(1) << 31);
    model_.thread->call([&] { gen_ = std::make_unique<Generator>(*model_.model, block_size, n_blocks); });
  }
  ~GeneratorWrap() override {
    model_.thread->call_quietly([this] { gen_.reset(); });
  }

 private:
  // Sync calls touch the cache, which a running step also uses (they do not touch the model, so a
  // forward on the model between steps does not block them).
  Generator& idle(const char* what) {
    if (stepping_->load())
      throw std::runtime_error(std::string(kCls) + "." + what + ": a step is running; await it first");
    if (!gen_) throw std::runtime_error(std::string(kCls) + "." + what + ": the generator was closed");
    return *gen_;
  }
  int64_t seq_arg(const Napi::CallbackInfo& info, const char* what) {
    return js::integer_arg(info[0], std::string(kCls) + "." + what, "sequence id", 0, int64_t(1) << 53);
  }

  Napi::Value AddSequence(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(idle("addSequence").cache().add_sequence()));
  }
  Napi::Value Fork(const Napi::CallbackInfo& info) {
    Generator& g = idle("fork");
    return Napi::Number::New(info.Env(), double(g.cache().fork(seq_arg(info, "fork"))));
  }
  Napi::Value Free(const Napi::CallbackInfo& info) {
    Generator& g = idle("free");
    g.cache().free(seq_arg(info, "free"));
    return info.Env().Undefined();
  }
  Napi::Value Length(const Napi::CallbackInfo& info) {
    Generator& g = idle("length");
    return Napi::Number::New(info.Env(), double(g.cache().length(seq_arg(info, "length"))));
  }
  Napi::Value Stats(const Napi::CallbackInfo& info) { return stats_object(info.Env(), idle("stats").stats()); }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    idle("close");
    // The model's decode buffers are shared by its generators; free them only when none is stepping.
    const bool release = !model_.busy->load();
    model_.thread->call([&] {
      gen_.reset();
      if (release) model_.model->release_decode_workspace();
    });
    return info.Env().Undefined();
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string fn = std::string(kCls) + ".step";
    Generator& g = idle("step");
    const Qwen3Config& c = model_.model->config();
    Napi::Object in = js::object(info[0], fn, "step");
    auto tokens = js::i32(in.Get("tokens"), fn, "step.tokens");
    const int64_t T = static_cast<int64_t>(tokens.length);
    if (T == 0) throw Napi::RangeError::New(env, fn + ": step.tokens is empty");
    js::check_ids(tokens, 0, static_cast<int32_t>(c.vocab), fn, "step.tokens");
    auto cu = js::i32(in.Get("cuSeqlens"), fn, "step.cuSeqlens");
    js::check_cu_seqlens(cu, T, fn, "step.cuSeqlens");
    Napi::Value ids_v = in.Get("seqIds");
    if (!ids_v.IsArray() || ids_v.As<Napi::Array>().Length() != cu.length - 1)
      throw Napi::TypeError::New(env, fn + ": step.seqIds must be an array of " + std::to_string(cu.length - 1) +
                                          " sequence ids (one per cuSeqlens interval)");
    auto logit_rows = js::i32(in.Get("logitRows"), fn, "step.logitRows");
    js::check_ids(logit_rows, 0, static_cast<int32_t>(T), fn, "step.logitRows");
    const int P = c.position_components();
    js::View<int32_t> pos;
    Napi::Value posv = in.Get("positions");
    if (!posv.IsUndefined() && !posv.IsNull()) {
      pos = js::i32(posv, fn, "step.positions", P * T, P == 1 ? "tokens" : "3*tokens (t, h, w rows)");
      js::check_ids(pos, 0, INT32_MAX, fn, "step.positions");
    }

    struct Job {
      std::vector<int32_t> tokens, cu, logit_rows, pos, out_tokens, image_rows;
      std::vector<float> pixels;
      std::vector<ImageGrid> grids;
      std::vector<int64_t> seq_ids;
      std::vector<SamplerParams> sampling;
      std::vector<float> out_logprobs;
    };
    auto job = std::make_shared<Job>();
    auto ids = ids_v.As<Napi::Array>();
    for (uint32_t i = 0; i < ids.Length(); ++i)
      job->seq_ids.push_back(js::integer_arg(ids.Get(i), fn, "step.seqIds[i]", 0, int64_t(1) << 53));
    job->sampling = parse_sampler_list(in.Get("sampling"), fn, logit_rows.length);
    job->tokens.assign(tokens.data, tokens.data + T);
    job->cu.assign(cu.data, cu.data + cu.length);
    job->logit_rows.assign(logit_rows.data, logit_rows.data + logit_rows.length);
    if (pos.data) job->pos.assign(pos.data, pos.data + pos.length);
    Napi::Value imagesv = in.Get("images");  // Qwen3-VL: { pixels, grids, rows } of the step's prompts
    if (!imagesv.IsUndefined() && !imagesv.IsNull()) {
      if (!c.vision) throw Napi::TypeError::New(env, fn + ": step.images given but the model has no vision tower");
      Napi::Object im = js::object(imagesv, fn, "step.images");
      ImageInputs images = parse_image_inputs(im.Get("grids"), im.Get("pixels"), *c.vision, fn, "step.images");
      job->grids = std::move(images.grids);
      job->pixels = std::move(images.pixels);
      auto rows = js::i32(im.Get("rows"), fn, "step.images.rows");
      js::check_ids(rows, 0, static_cast<int32_t>(T), fn, "step.images.rows");
      job->image_rows.assign(rows.data, rows.data + rows.length);
    }
    job->out_tokens.resize(logit_rows.length);
    job->out_logprobs.resize(logit_rows.length);

    bool expected = false;
    if (!model_.busy->compare_exchange_strong(expected, true))
      throw std::runtime_error(fn + ": the model is busy with another call; await it before starting the next");
    stepping_->store(true);
    Generator* gp = &g;
    auto busy = model_.busy;
    auto stepping = stepping_;
    return model_.thread->async(
        env,
        [job, gp, T] {
          CachedStep s;
          s.T = T;
          s.tokens = job->tokens.data();
          s.n_seqs = static_cast<int64_t>(job->seq_ids.size());
          s.seq_ids = job->seq_ids.data();
          s.cu_seqlens = job->cu.data();
          s.positions = job->pos.empty() ? nullptr : job->pos.data();
          s.n_logit_rows = static_cast<int64_t>(job->logit_rows.size());
          s.logit_rows = job->logit_rows.data();
          s.pixels = job->pixels.data();
          s.grids = job->grids.data();
          s.n_images = static_cast<int64_t>(job->grids.size());
          s.image_rows = job->image_rows.data();
          s.n_image_rows = static_cast<int64_t>(job->image_rows.size());
          gp->step(s, job->sampling.data(), job->out_tokens.data(), job->out_logprobs.data());
        },
        [job](Napi::Env env) -> Napi::Value {
          auto out = Napi::Object::New(env);
          auto t = Napi::Int32Array::New(env, job->out_tokens.size());
          std::copy(job->out_tokens.begin(), job->out_tokens.end(), t.Data());
          out.Set("tokens", t);
          out.Set("logprobs", js::new_f32(env, job->out_logprobs.data(), job->out_logprobs.size()));
          return out;
        },
        {info.This()},
        [busy, stepping] {
          busy->store(false);
          stepping->store(false);
        });
  }

  ModelHandle model_;
  std::shared_ptr<std::atomic<bool>> stepping_ = std::make_shared<std::atomic<bool>>(false);
  Napi::ObjectReference model_ref_;
  std::unique_ptr<Generator> gen_;
};

// sampleLogits(logits, vocab, sampling[], histories?, backend = "cpu") -> { tokens, logprobs }: the sampler
// alone, on the named backend (Backend::sample: logits, histories and outputs in its memory, the params and
// history offsets on the host).
Napi::Value SampleLogits(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = "sampleLogits";
  auto logits = js::f32(info[0], fn, "logits", -1, nullptr, true);
  const int64_t V = js::integer_arg(info[1], fn, "vocab", 1, INT32_MAX);
  if (logits.length % V != 0) throw Napi::RangeError::New(env, fn + ": logits length must be a multiple of vocab");
  const int64_t rows = static_cast<int64_t>(logits.length) / V;
  auto params = parse_sampler_list(info[2], fn, rows);
  std::vector<int32_t> history;
  std::vector<int64_t> offsets(static_cast<size_t>(rows) + 1, 0);
  if (!info[3].IsUndefined()) {
    if (!info[3].IsArray() || info[3].As<Napi::Array>().Length() != rows)
      throw Napi::TypeError::New(env, fn + ": histories must be an array of " + std::to_string(rows) + " Int32Arrays");
    auto arr = info[3].As<Napi::Array>();
    for (uint32_t r = 0; r < rows; ++r) {
      auto h = js::i32(arr.Get(r), fn, "histories[r]");
      js::check_ids(h, 0, static_cast<int32_t>(V), fn, "histories[r]");
      history.insert(history.end(), h.data, h.data + h.length);
      offsets[r + 1] = static_cast<int64_t>(history.size());
    }
  }
  if (!info[4].IsUndefined() && !info[4].IsString())
    throw Napi::TypeError::New(env, fn + ": backend must be a backend's name (cpu, cuda, cuda-guard)");
  Backend& be = backend_named(info[4].IsUndefined() ? "cpu" : info[4].As<Napi::String>().Utf8Value());
  BackendArray<float> logits_d = BackendArray<float>::uninit(be, static_cast<int64_t>(logits.length));
  auto history_d = backend_array<int32_t>(be, static_cast<int64_t>(history.size()));
  BackendArray<int32_t> tokens_d(be, rows);
  BackendArray<float> logprobs_d(be, rows);
  be.from_host(logits_d.get(), logits.data, sizeof(float) * logits.length);
  be.from_host(history_d.get(), history.data(), sizeof(int32_t) * history.size());
  be.run<Sample>(tokens_d.get(), logprobs_d.get(), logits_d.get(),
                 SampleBatch{rows, V, params.data(), history_d.get(), offsets.data()});
  auto tokens = Napi::Int32Array::New(env, rows);
  auto logprobs = Napi::Float32Array::New(env, rows);
  be.to_host(tokens.Data(), tokens_d.get(), sizeof(int32_t) * rows);
  be.to_host(logprobs.Data(), logprobs_d.get(), sizeof(float) * rows);
  auto out = Napi::Object::New(env);
  out.Set("tokens", tokens);
  out.Set("logprobs", logprobs);
  return out;
}

// samplingDistribution(logits, sampling, history?) -> { ids, probs }: what one row's draw picks from, by the
// CPU reference (sampling.h), against which the tests hold every backend's draws.
Napi::Value SamplingDistribution(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string fn = "samplingDistribution";
  auto logits = js::f32(info[0], fn, "logits", -1, nullptr, true);
  if (logits.length == 0) throw Napi::RangeError::New(env, fn + ": logits is empty");
  SamplerParams p = parse_sampler(info[1], fn, "sampling");
  js::View<int32_t> h;
  if (!info[2].IsUndefined()) {
    h = js::i32(info[2], fn, "history");
    js::check_ids(h, 0, static_cast<int32_t>(logits.length), fn, "history");
  }
  std::vector<int32_t> ids;
  std::vector<double> probs;
  cpu::sampling_distribution(ids, probs, logits.data, static_cast<int64_t>(logits.length), p, h.data,
                             static_cast<int64_t>(h.length));
  auto out = Napi::Object::New(env);
  auto ids_js = Napi::Int32Array::New(env, ids.size());
  std::copy(ids.begin(), ids.end(), ids_js.Data());
  auto probs_js = Napi::Float64Array::New(env, probs.size());
  std::copy(probs.begin(), probs.end(), probs_js.Data());
  out.Set("ids", ids_js);
  out.Set("probs", probs_js);
  return out;
}

}  // namespace

void init_generate(Napi::Env env, Napi::Object exports) {
  exports.Set(kCls, GeneratorWrap::Define(env));
  exports.Set("sampleLogits", Napi::Function::New(env, SampleLogits, "sampleLogits"));
  exports.Set("samplingDistribution", Napi::Function::New(env, SamplingDistribution, "samplingDistribution"));
}

}  // namespace medix::bindings
