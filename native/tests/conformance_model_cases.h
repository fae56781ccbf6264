// The whole model on the CUDA backend (kernels/cuda_backend.cu) against the same model on the CPU
// backend: a small Qwen3 (two packed sequences, GQA, head_dim 32 as the GPU attention needs) from the
// same seed, one training forward (log-probs and entropies), backward with given d/dlogp and
// d/dentropy (every parameter's gradient), one AdamW step with clipping (the grad norm and every
// updated weight), then cached generation: a prefill of both prompts, a decode step, and the logits
// of each. Included by cuda_conformance.cu inside its namespace, after run_case and the tolerances.
// model_vl: the same with a small Qwen3-VL tower (model_params.h) on two images in training and in the
// prefill; the tower's ops add two blocks and two mergers to the chain, within the same bounds.
//
// Tolerances: each op is checked alone above; here their errors compound through the layers, so the
// outputs get GEMM-like bounds (kGemm) and the gradients the attention-gradient bound
// (kAttentionGrad). The AdamW update at lr 1e-3 moves each weight by about lr, and sign-like
// m / sqrt(v) amplifies gradient noise only where a gradient is near zero: kModelStep bounds the
// updated weights relative to the largest weight.
//
// model_full_shard, model_vl_full_shard_bf16: the same fully sharded over a world of one (its collectives
// NCCL's on the GPU), with the weights gathered for their output and the generation.
//
// The model again with a bf16 compute copy (model_bf16, and model_vl_bf16 with the tower, whose
// projections read the copy too): the CPU's bf16 model against the CUDA one
// with MEDIX_CUDA_LINEAR=tiled and MEDIX_CUDA_ATTENTION=rowwise, whose bf16 products keep fp32
// activations as the CPU's do (the cuBLASLt and tensor-core attention paths, which also round the
// activations, are checked op by op in conformance_bf16_cases.h and conformance_attention_cases.h,
// and together by model_bf16_tensor_cores, below). The bf16
// KV cache comes with it. The forward and backward keep the f32 bounds: the bf16 copy of the initial
// weights is the same bits on both sides. The generation does not: it rounds values the two sides
// computed differently (the copy remade from the stepped weights, which differ by kModelStep; k and v
// written to the bf16 cache), and fp32 noise that moves one across a rounding boundary moves it by a
// bf16 ulp (2^-8 relative), which the logits see at up to ~5e-4 of their largest value (an emulation
// with a few fp32 ulps of noise on every product: 40-90% of runs over kGemm). So their atol is 2^-8.
// The weights: one near-zero gradient of this batch makes AdamW's sign-like first step flip under
// noise (2 lr, the largest weight is 1), so atol 2 lr.
#pragma once

constexpr Tolerance kModelStep{1e-5, 2e-5};

Qwen3Config conformance_model_config() {
  Qwen3Config c;
  c.vocab = 300;
  c.hidden = 64;
  c.intermediate = 96;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 32;
  c.rope_theta = 10000.0f;
  return c;
}

// Full sharding (model_full_shard*): the communicator that moves the model's memory (the MPI world's host
// memcpy on the CPU, NCCL over one rank on the GPU) and the one that sums host values.
struct ShardOver {
  Communicator* buffers = nullptr;
  Communicator* scalars = nullptr;
};

// Everything the model computes, as named outputs (flattened to float). A mixture-of-experts config
// adds the load-balancing loss to the backward and its losses and expert loads to the outputs. Fully
// sharded (`shard`), a rank keeps no whole gradients: the weights are gathered for their output and the
// generation instead.
Outputs model_step(Backend& be, const Qwen3Config& cfg, ComputeDType dtype = ComputeDType::f32, ShardOver shard = {}) {
  Qwen3Model model(cfg, be, 7, 0.05f);
  if (shard.buffers) model.set_full_shard(*shard.buffers, *shard.scalars);
  model.set_compute_dtype(dtype);
  if (cfg.experts > 0) model.set_aux_loss_weight(0.05f);
  Rng rng(40);
  const std::vector<int32_t> cu = {0, 9, 16};
  const int64_t T = cu.back();
  std::vector<int32_t> tokens(T), targets(T);
  for (int64_t t = 0; t < T; ++t) tokens[t] = rng.below(cfg.vocab - 1);  // the last id: a VL model's image token
  PackedBatch b;
  const std::optional<TestImages> images = cfg.vision ? std::optional<TestImages>(*cfg.vision) : std::nullopt;
  if (images) images->place(cfg, tokens, b);
  for (int64_t t = 0; t < T; ++t) targets[t] = t == 8 || t == 15 || t < 3 ? -1 : tokens[t + 1];  // no target past a seq
  b.T = T;
  b.tokens = tokens.data();
  b.cu_seqlens = cu.data();
  b.n_seqs = 2;
  b.targets = targets.data();
  ForwardOptions fo;
  fo.training = true;
  fo.entropy = true;
  fo.temperature = 0.9f;
  std::vector<float> logp(T), entropy(T);
  model.forward(b, fo, logp.data(), entropy.data(), nullptr);
  Outputs out{{"logp", logp}, {"entropy", entropy}};
  if (cfg.experts > 0) {
    const std::vector<double> aux = model.aux_losses();
    out["aux_losses"] = std::vector<float>(aux.begin(), aux.end());
    out["expert_load"] = std::vector<float>(model.expert_load().begin(), model.expert_load().end());
  }
  const std::vector<float> dlogp = random_floats(rng, T, -1, 1), dentropy = random_floats(rng, T, -0.1f, 0.1f);
  model.zero_grad();
  model.backward(dlogp.data(), T, dentropy.data());
  if (!shard.buffers) out["grads"] = every_param(model, &Qwen3Model::get_grad);
  AdamWConfig adam;
  adam.lr = 1e-3f;
  const StepResult step = model.optimizer_step(adam, 0.5f, std::vector<bool>(model.params().size(), true));
  out["grad_norm"] = {static_cast<float>(step.grad_norm)};
  if (shard.buffers) model.gather_weights();
  out["weights"] = every_param(model, &Qwen3Model::get_param);

  // Cached generation with the updated weights: both prompts in one prefill, then one token each.
  KvCacheConfig kc;
  kc.dtype = dtype;
  kc.layers = cfg.layers;
  kc.kv_dim = cfg.kv_heads * cfg.head_dim;
  kc.block_size = 4;
  kc.n_blocks = 16;
  KvCache cache(kc, be);
  const std::vector<int64_t> ids = {cache.add_sequence(), cache.add_sequence()};
  const std::vector<int32_t> rows = {8, 15};  // each prompt's last token
  float* logits = static_cast<float*>(be.alloc(sizeof(float) * 2 * cfg.vocab));
  std::vector<float> prefill(2 * cfg.vocab), decode(2 * cfg.vocab);
  CachedStep s;
  s.T = T;
  s.tokens = tokens.data();
  s.n_seqs = 2;
  s.seq_ids = ids.data();
  s.cu_seqlens = cu.data();
  s.n_logit_rows = 2;
  s.logit_rows = rows.data();
  if (images) images->place(s);
  model.forward_cached(s, cache, logits);
  be.to_host(prefill.data(), logits, sizeof(float) * prefill.size());
  s.pixels = nullptr, s.grids = nullptr, s.n_images = 0, s.image_rows = nullptr, s.n_image_rows = 0;
  const std::vector<int32_t> next = {tokens[1], tokens[10]}, cu1 = {0, 1, 2}, rows1 = {0, 1};
  s.T = 2;
  s.tokens = next.data();
  s.cu_seqlens = cu1.data();
  s.logit_rows = rows1.data();
  model.forward_cached(s, cache, logits);
  be.to_host(decode.data(), logits, sizeof(float) * decode.size());
  be.release(logits);
  out["prefill_logits"] = std::move(prefill);
  out["decode_logits"] = std::move(decode);
  return out;
}

void model_cases(Context& ctx) {
  const Tolerances tol{{"logp", kGemm},         {"entropy", kGemm},      {"grads", kAttentionGrad},
                       {"grad_norm", kGemm},    {"weights", kModelStep}, {"prefill_logits", kGemm},
                       {"decode_logits", kGemm}};
  const std::string what =
      "qwen3 layers=2 hidden=64 heads=4/2 head_dim=32 vocab=300 T=16 (2 seqs): fwd+bwd+adamw+decode";
  using Env = std::vector<std::pair<const char*, const char*>>;
  // One case: the model from `cfg` in `dtype` on the CPU backend, then on CUDA with `env` set.
  auto model_case = [&](const char* op, const std::string& label, const Qwen3Config& cfg, ComputeDType dtype,
                        const Env& env, const Tolerances& t) {
    if (!wanted(ctx, op)) return;
    run_case(
        ctx, op, label, [&] { return model_step(cpu_backend(), cfg, dtype); },
        [&](GpuTimer& timer) {
          std::vector<std::unique_ptr<EnvScope>> scopes;
          for (const auto& [name, value] : env) scopes.push_back(std::make_unique<EnvScope>(name, value));
          timer.start();
          Outputs out = model_step(cuda::backend(), cfg, dtype);
          timer.stop();
          return out;
        },
        t);
  };
  const Qwen3Config text = conformance_model_config(), vl = with_test_vision(conformance_model_config());
  const std::string vl_what = what + ", Qwen3-VL: a 2-block tower (hidden 64, head_dim 32) on 2 images, deepstack";
  model_case("model", what, text, ComputeDType::f32, {}, tol);
  model_case("model_vl", vl_what, vl, ComputeDType::f32, {}, tol);
  Tolerances tol_bf16 = tol;
  tol_bf16["prefill_logits"] = tol_bf16["decode_logits"] = {kGemm.rtol, 0x1p-8};
  tol_bf16["weights"] = {kModelStep.rtol, 2e-3};
  const Env same_arithmetic = {{"MEDIX_CUDA_LINEAR", "tiled"}, {"MEDIX_CUDA_ATTENTION", "rowwise"}};
  model_case("model_bf16", what + ", bf16 compute copy and KV cache", text, ComputeDType::bf16, same_arithmetic,
             tol_bf16);
  model_case("model_vl_bf16", vl_what + ", bf16 compute copy (the tower's too) and KV cache", vl, ComputeDType::bf16,
             same_arithmetic, tol_bf16);
  // The same on the paths a bf16 run takes by default, which also round activations to bf16: cuBLASLt
  // where it opens, and the tensor-core attention. Each is bounded op by op; through the layers their
  // roundings compound in ways no simple bound follows, so this is a wiring check, not a precision
  // one: 2^-5 of each output's largest value passes a few bf16 ulps per op and fails a wrong
  // operand, mask or layout, whose errors are of the outputs' own size.
  Tolerances tol_tc;
  for (const auto& entry : tol_bf16) tol_tc[entry.first] = {0.0, 0x1p-5};
  const Env tensor_cores = {{"MEDIX_CUDA_ATTENTION", "flash"}};
  model_case("model_bf16_tensor_cores", what + ", bf16 on cuBLASLt (where it opens) and tensor-core attention", text,
             ComputeDType::bf16, tensor_cores, tol_tc);
  model_case("model_vl_bf16_tensor_cores", vl_what + ", bf16 on cuBLASLt and tensor-core attention", vl,
             ComputeDType::bf16, tensor_cores, tol_tc);
  // Fully sharded over one rank: the layouts reserved (kernels/reservation.cu), every unit gathered and
  // its gradients reduce-scattered by NCCL, the step on the shards. With bf16 compute every op reads the
  // bf16-rounded weights, on both sides alike, so the bf16 bounds hold.
  auto full_shard_case = [&](const char* op, const std::string& label, const Qwen3Config& cfg, ComputeDType dtype,
                             const Env& env, const Tolerances& t) {
    if (!wanted(ctx, op)) return;
    run_case(
        ctx, op, label,
        [&] {
          return model_step(cpu_backend(), cfg, dtype, {&world(), &world()});
        },
        [&](GpuTimer& timer) {
          std::vector<std::unique_ptr<EnvScope>> scopes;
          for (const auto& [name, value] : env) scopes.push_back(std::make_unique<EnvScope>(name, value));
          Communicator& nccl = cuda::nccl_world();
          timer.start();
          Outputs out = model_step(cuda::backend(), cfg, dtype, {&nccl, &world()});
          timer.stop();
          return out;
        },
        t);
  };
  full_shard_case("model_full_shard", what + ", fully sharded over 1 NCCL rank", text, ComputeDType::f32, {}, tol);
  full_shard_case("model_vl_full_shard_bf16", vl_what + ", fully sharded over 1 NCCL rank, bf16 gathers", vl,
                  ComputeDType::bf16, same_arithmetic, tol_bf16);
}
