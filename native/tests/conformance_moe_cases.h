// The mixture-of-experts conformance cases (kernels/moe.cu against native/ops/moe.h): the router
// (softmax, top-K with and without norm_topk, exact ties, the stable grouping by expert over more than
// one sort chunk) forward and backward, the experts (gather, per-expert SwiGLU GEMMs, the weighted
// combination) forward and backward, in fp32 and on bf16 weights, and the load-balancing loss's
// backward, at tiny shapes and Qwen3-30B-A3B's (hidden 2048, 128 experts, top 8, moe_intermediate 768);
// then a whole tiny MoE model (two sparse layers around a dense one) through model_step. Included by
// cuda_conformance.cu inside its namespace, after run_case, the tolerances and conformance_model_cases.h.
//
// Tolerances: experts, order and offsets are integers and must be exact (ties included: equal logits
// give equal probabilities on each side, and both break ties to the lower index). Probabilities,
// routing weights and the router's gradients are element-wise math over a row's double sums (kUlps).
// Expert outputs and gradients are GEMMs (kGemm). The whole model routes from computed logits, where a
// near-tie could flip between CPU and GPU: in its forward the smallest gap between a token's 2nd and 3rd
// router logits is 3.5e-3, some 1000x the fp32 noise at hidden 64.
//
// Host memory: Qwen3-30B-A3B's stacked experts are 2.4 GB in fp32, their gradients as much again.
// A few tokens touch at most T*K experts, so the expert tensors live in lazily committed memory
// (LazyHostTensor): only the touched experts' slices are ever written on the host, the outputs hold
// only those slices, and the untouched slices of every gradient are checked to stay zero (their
// sum of squares, on each side). The big case (T = 3) holds under 2.5 GB at its peak.
#pragma once

// Integer outputs compared as floats (exact below 2^24).
template <typename T>
std::vector<float> as_floats(const std::vector<T>& v) {
  return std::vector<float>(v.begin(), v.end());
}

// Memory of n values (fp32, or bf16 bits) from an anonymous mapping: zero, and committed page by page
// as it is written.
template <typename T>
class LazyHost {
 public:
  explicit LazyHost(int64_t n) : bytes_(sizeof(T) * static_cast<size_t>(n)) {
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) fail("LazyHost: mmap of ", bytes_, " bytes failed");
    ptr_ = static_cast<T*>(p);
  }
  ~LazyHost() { munmap(ptr_, bytes_); }
  LazyHost(const LazyHost&) = delete;
  LazyHost& operator=(const LazyHost&) = delete;
  T* get() const { return ptr_; }

 private:
  size_t bytes_;
  T* ptr_ = nullptr;
};
using LazyHostTensor = LazyHost<float>;

// The experts a routing touches, and moves of per-expert slices (`slice` floats each) between a
// packed [touched, slice] host vector and full [E, slice] tensors on either side.
struct TouchedExperts {
  std::vector<int64_t> ids;
  int64_t E = 0;

  template <typename T>
  void unpack(T* full, const std::vector<T>& packed, int64_t slice) const {
    for (size_t i = 0; i < ids.size(); ++i) std::copy_n(packed.data() + i * slice, slice, full + ids[i] * slice);
  }
  std::vector<float> pack(const float* full, int64_t slice) const {
    std::vector<float> packed(ids.size() * slice);
    for (size_t i = 0; i < ids.size(); ++i) std::copy_n(full + ids[i] * slice, slice, packed.data() + i * slice);
    return packed;
  }
  template <typename T>
  void upload(T* device, const std::vector<T>& packed, int64_t slice) const {
    for (size_t i = 0; i < ids.size(); ++i)
      cuda_ok(cudaMemcpy(device + ids[i] * slice, packed.data() + i * slice, sizeof(T) * slice, cudaMemcpyHostToDevice),
              "upload expert slice");
  }
  std::vector<float> download(const float* device, int64_t slice) const {
    std::vector<float> packed(ids.size() * slice);
    for (size_t i = 0; i < ids.size(); ++i)
      cuda_ok(
          cudaMemcpy(packed.data() + i * slice, device + ids[i] * slice, sizeof(float) * slice, cudaMemcpyDeviceToHost),
          "download expert slice");
    return packed;
  }
  // Sum of squares over the experts not touched (the host reads only zero pages there).
  float untouched_sum_squares(const float* full, int64_t slice, bool on_device) const {
    double sum = 0.0;
    for (int64_t e = 0, i = 0; e < E; ++e) {
      if (i < static_cast<int64_t>(ids.size()) && ids[i] == e) {
        ++i;
        continue;
      }
      if (on_device)
        sum += cuda::sum_squares(full + e * slice, slice);
      else
        for (int64_t j = 0; j < slice; ++j) sum += double(full[e * slice + j]) * full[e * slice + j];
    }
    return static_cast<float>(sum);
  }
};

// Router inputs and the CPU's routing of them; `ties` rounds the logits to integers (-2..1): exact ties.
struct Routing {
  MoeShape s;
  std::vector<float> logits, probs, weights;
  std::vector<int32_t> experts, order, offsets;
  Routing(const MoeShape& shape, Rng& rng, bool ties) : s(shape) {
    logits = random_floats(rng, s.T * s.E, -3, 3);
    if (ties)
      for (float& x : logits) x = std::floor(x / 2);
    probs.resize(s.T * s.E);
    weights.resize(s.T * s.K);
    experts.resize(s.T * s.K);
    order.resize(s.T * s.K);
    offsets.resize(s.E + 1);
    cpu::moe_route_forward(probs.data(), experts.data(), weights.data(), order.data(), offsets.data(), logits.data(),
                           s);
  }
  TouchedExperts touched() const {
    TouchedExperts t;
    t.E = s.E;
    for (int64_t e = 0; e < s.E; ++e)
      if (offsets[e + 1] > offsets[e]) t.ids.push_back(e);
    return t;
  }
};

std::string moe_shape_name(const MoeShape& s) {
  return to_string_shape({{"T", s.T}, {"H", s.H}, {"I", s.I}, {"E", s.E}, {"K", s.K}}) +
         (s.norm_topk ? " norm_topk" : "");
}

void moe_route_case(Context& ctx, const MoeShape& s, bool ties) {
  Rng rng(50);
  const Routing in(s, rng, ties);
  const std::vector<float> dweights = random_floats(rng, s.T * s.K, -1, 1);
  const std::vector<float> dlogits0 = random_floats(rng, s.T * s.E, -1, 1);
  run_case(
      ctx, "moe_route", moe_shape_name(s) + (ties ? " (tied logits)" : ""),
      [&] {
        std::vector<float> dlogits = dlogits0;
        cpu::moe_route_backward(dlogits.data(), dweights.data(), in.probs.data(), in.experts.data(), in.weights.data(),
                                s);
        return Outputs{{"probs", in.probs},
                       {"experts", as_floats(in.experts)},
                       {"weights", in.weights},
                       {"order", as_floats(in.order)},
                       {"offsets", as_floats(in.offsets)},
                       {"dlogits", std::move(dlogits)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_logits(in.logits), d_dw(dweights), d_dlogits(dlogits0);
        DeviceBuffer<float> d_probs(s.T * s.E), d_weights(s.T * s.K);
        DeviceBuffer<int32_t> d_experts(s.T * s.K), d_order(s.T * s.K), d_offsets(s.E + 1);
        timer.start();
        cuda::moe_route_forward(d_probs.get(), d_experts.get(), d_weights.get(), d_order.get(), d_offsets.get(),
                                d_logits.get(), s);
        cuda::moe_route_backward(d_dlogits.get(), d_dw.get(), d_probs.get(), d_experts.get(), d_weights.get(), s);
        timer.stop();
        return Outputs{{"probs", d_probs.to_host()},
                       {"experts", as_floats(d_experts.to_host())},
                       {"weights", d_weights.to_host()},
                       {"order", as_floats(d_order.to_host())},
                       {"offsets", as_floats(d_offsets.to_host())},
                       {"dlogits", d_dlogits.to_host()}};
      },
      {{"probs", kUlps},
       {"experts", kExact},
       {"weights", kUlps},
       {"order", kExact},
       {"offsets", kExact},
       {"dlogits", kUlps}});
}

// The experts through either weight type: fp32, or bf16 bits (moe.h's *_bf16; kernels.h's overloads).
void cpu_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const float* gu, const float* dn,
                         const Routing& in) {
  cpu::moe_experts_forward(out, gate, up, y, x, gu, dn, in.weights.data(), in.order.data(), in.offsets.data(), in.s);
}
void cpu_experts_forward(float* out, float* gate, float* up, float* y, const float* x, const uint16_t* gu,
                         const uint16_t* dn, const Routing& in) {
  cpu::moe_experts_forward_bf16(out, gate, up, y, x, gu, dn, in.weights.data(), in.order.data(), in.offsets.data(),
                                in.s);
}
void cpu_experts_backward(float* dx, float* dgu, float* ddn, float* dweights, const float* dout, const float* x,
                          const float* gu, const float* dn, const Routing& in, const float* gate, const float* up,
                          const float* y) {
  cpu::moe_experts_backward(dx, dgu, ddn, dweights, dout, x, gu, dn, in.weights.data(), in.order.data(),
                            in.offsets.data(), gate, up, y, in.s);
}
void cpu_experts_backward(float* dx, float* dgu, float* ddn, float* dweights, const float* dout, const float* x,
                          const uint16_t* gu, const uint16_t* dn, const Routing& in, const float* gate, const float* up,
                          const float* y) {
  cpu::moe_experts_backward_bf16(dx, dgu, ddn, dweights, dout, x, gu, dn, in.weights.data(), in.order.data(),
                                 in.offsets.data(), gate, up, y, in.s);
}
const float* device_weights(const DeviceBuffer<float>& b) { return b.get(); }
const bf16* device_weights(const DeviceBuffer<uint16_t>& b) { return as_bf16(b); }

// The weights as the case's weight type.
std::vector<float> weights_as(const std::vector<float>& w, float) { return w; }
std::vector<uint16_t> weights_as(const std::vector<float>& w, uint16_t) { return to_bf16(w); }

// The experts at the CPU's routing of random logits: forward (out and the saved gate, up, y) and
// backward from random initial gradients (the += contract), touched experts' slices only. Weight is
// float ("moe_experts"), or uint16_t for bf16 weights, on the tiled kernel ("moe_experts_bf16": fp32
// activations as on the CPU, kGemm) or on cuBLASLt ("moe_experts_bf16_cublaslt", which rounds the
// activations to bf16 too; through three products and SwiGLU no bound from magnitudes is tight enough
// to test with (moe.h), so as for model_bf16_tensor_cores it is a wiring check at 2^-5 of each output's
// largest value, with gradients from zero so that the bound is on what the backward adds, and every
// operand checked to keep cuBLASLt's alignment: the backend would fall back to the tiled kernel quietly).
template <typename Weight>
void moe_experts_case(Context& ctx, const MoeShape& s, bool cublaslt = false) {
  constexpr bool bf16_weights = std::is_same_v<Weight, uint16_t>;
  Rng rng(51);
  const Routing in(s, rng, false);
  const TouchedExperts touched = in.touched();
  const int64_t T = s.T, H = s.H, I = s.I, n = s.T * s.K, gu = 2 * I * H, dn = H * I;
  const int64_t nt = static_cast<int64_t>(touched.ids.size());
  const float wscale = 1.0f / std::sqrt(static_cast<float>(H));
  const std::vector<float> x = random_floats(rng, T * H, -1, 1), dout = random_floats(rng, T * H, -1, 1);
  const std::vector<Weight> gate_up = weights_as(random_floats(rng, nt * gu, -wscale, wscale), Weight{});
  const std::vector<Weight> down = weights_as(random_floats(rng, nt * dn, -wscale, wscale), Weight{});
  auto initial = [&](int64_t count) {
    std::vector<float> v = random_floats(rng, count, -1, 1);
    if (cublaslt) std::fill(v.begin(), v.end(), 0.0f);
    return v;
  };
  const std::vector<float> dx0 = initial(T * H), dgu0 = initial(nt * gu), ddown0 = initial(nt * dn);
  Tolerances tol{{"out", kGemm},     {"gate", kGemm},     {"up", kGemm},    {"y", kGemm},
                 {"dx", kGemm},      {"dgate_up", kGemm}, {"ddown", kGemm}, {"untouched_grads", kExact},
                 {"dweights", kGemm}};
  if (cublaslt)
    for (auto& [name, t] : tol)
      if (name != "untouched_grads") t = {0.0, 0x1p-5};
  const std::string op = !bf16_weights ? "moe_experts" : cublaslt ? "moe_experts_bf16_cublaslt" : "moe_experts_bf16";
  run_case(
      ctx, op, moe_shape_name(s) + " experts touched=" + std::to_string(nt),
      [&] {
        const LazyHost<Weight> w_gu(s.E * gu), w_dn(s.E * dn);
        const LazyHostTensor g_gu(s.E * gu), g_dn(s.E * dn);
        touched.unpack(w_gu.get(), gate_up, gu);
        touched.unpack(w_dn.get(), down, dn);
        touched.unpack(g_gu.get(), dgu0, gu);
        touched.unpack(g_dn.get(), ddown0, dn);
        std::vector<float> out(T * H), gate(n * I), up(n * I), y(n * H), dx = dx0, dweights(n);
        cpu_experts_forward(out.data(), gate.data(), up.data(), y.data(), x.data(), w_gu.get(), w_dn.get(), in);
        cpu_experts_backward(dx.data(), g_gu.get(), g_dn.get(), dweights.data(), dout.data(), x.data(), w_gu.get(),
                             w_dn.get(), in, gate.data(), up.data(), y.data());
        const float untouched =
            touched.untouched_sum_squares(g_gu.get(), gu, false) + touched.untouched_sum_squares(g_dn.get(), dn, false);
        return Outputs{{"out", std::move(out)},
                       {"gate", std::move(gate)},
                       {"up", std::move(up)},
                       {"y", std::move(y)},
                       {"dx", std::move(dx)},
                       {"dgate_up", touched.pack(g_gu.get(), gu)},
                       {"ddown", touched.pack(g_dn.get(), dn)},
                       {"untouched_grads", {untouched}},
                       {"dweights", std::move(dweights)}};
      },
      [&](GpuTimer& timer) {
        // bf16 weights on the path the case names (fp32 ones as the environment says).
        std::optional<EnvScope> linear;
        if (bf16_weights) linear.emplace("MEDIX_CUDA_LINEAR", cublaslt ? "cublaslt" : "tiled");
        DeviceBuffer<float> d_x(x), d_dout(dout), d_dx(dx0), d_w(in.weights), d_out(T * H), d_gate(n * I);
        DeviceBuffer<float> d_up(n * I), d_y(n * H), d_dweights(n), d_ggu(s.E * gu), d_gdn(s.E * dn);
        DeviceBuffer<Weight> d_gu(s.E * gu), d_dn(s.E * dn);
        DeviceBuffer<int32_t> d_order(in.order), d_offsets(in.offsets);
        touched.upload(d_gu.get(), gate_up, gu);
        touched.upload(d_dn.get(), down, dn);
        touched.upload(d_ggu.get(), dgu0, gu);
        touched.upload(d_gdn.get(), ddown0, dn);
        if (cublaslt) {
          // Each expert's rows start at multiples of H and I floats and its weights at multiples of I H
          // bf16 values, from 256-byte aligned buffers (and scratch): all keep the alignment if these do.
          MEDIX_CHECK(H * 4 % 256 == 0 && I * 4 % 256 == 0 && I * H * 2 % 256 == 0, op,
                      ": a row or weight slice would break cuBLASLt's 256-byte alignment");
          for (const void* p : {static_cast<const void*>(d_x.get()), static_cast<const void*>(d_dout.get()),
                                static_cast<const void*>(d_dx.get()), static_cast<const void*>(d_out.get()),
                                static_cast<const void*>(d_gate.get()), static_cast<const void*>(d_up.get()),
                                static_cast<const void*>(d_y.get()), static_cast<const void*>(d_ggu.get()),
                                static_cast<const void*>(d_gdn.get()), static_cast<const void*>(d_gu.get()),
                                static_cast<const void*>(d_dn.get())})
            MEDIX_CHECK(cuda::blas_aligned(p), op, ": an operand is not 256-byte aligned; cuBLASLt would not run");
        }
        timer.start();
        cuda::moe_experts_forward(d_out.get(), d_gate.get(), d_up.get(), d_y.get(), d_x.get(), device_weights(d_gu),
                                  device_weights(d_dn), d_w.get(), d_order.get(), d_offsets.get(), s);
        cuda::moe_experts_backward(d_dx.get(), d_ggu.get(), d_gdn.get(), d_dweights.get(), d_dout.get(), d_x.get(),
                                   device_weights(d_gu), device_weights(d_dn), d_w.get(), d_order.get(),
                                   d_offsets.get(), d_gate.get(), d_up.get(), d_y.get(), s);
        timer.stop();
        const float untouched =
            touched.untouched_sum_squares(d_ggu.get(), gu, true) + touched.untouched_sum_squares(d_gdn.get(), dn, true);
        return Outputs{{"out", d_out.to_host()},
                       {"gate", d_gate.to_host()},
                       {"up", d_up.to_host()},
                       {"y", d_y.to_host()},
                       {"dx", d_dx.to_host()},
                       {"dgate_up", touched.download(d_ggu.get(), gu)},
                       {"ddown", touched.download(d_gdn.get(), dn)},
                       {"untouched_grads", {untouched}},
                       {"dweights", d_dweights.to_host()}};
      },
      tol);
}

// The load-balancing loss's backward over three sequences (the middle one empty) with the statistics
// of `layers` layers (this one's routing counted `layers` times).
void moe_aux_case(Context& ctx, const MoeShape& s) {
  Rng rng(52);
  const Routing in(s, rng, false);
  const std::vector<int32_t> cu = {0, static_cast<int32_t>(s.T / 3), static_cast<int32_t>(s.T / 3),
                                   static_cast<int32_t>(s.T)};
  const int64_t n_seqs = 3, layers = 2;
  const float scale = 0.05f;
  std::vector<double> counts(n_seqs * s.E), prob_sums(n_seqs * s.E);
  for (int64_t l = 0; l < layers; ++l)
    cpu::moe_load_accumulate(counts.data(), prob_sums.data(), in.probs.data(), in.experts.data(), cu.data(), n_seqs, s);
  const std::vector<float> dlogits0 = random_floats(rng, s.T * s.E, -1, 1);
  run_case(
      ctx, "moe_aux", moe_shape_name(s) + " seqs=3 layers=2",
      [&] {
        std::vector<float> dlogits = dlogits0;
        cpu::moe_aux_backward(dlogits.data(), in.probs.data(), counts.data(), cu.data(), n_seqs, layers, scale, s);
        return Outputs{{"dlogits", std::move(dlogits)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_probs(in.probs), d_dlogits(dlogits0);
        timer.start();
        cuda::moe_aux_backward(d_dlogits.get(), d_probs.get(), counts.data(), cu.data(), n_seqs, layers, scale, s);
        timer.stop();
        return Outputs{{"dlogits", d_dlogits.to_host()}};
      },
      {{"dlogits", kUlps}});
}

// conformance_model_config with experts: layers 0 and 2 sparse (8 experts, top 2), layer 1 dense.
Qwen3Config conformance_moe_model_config() {
  Qwen3Config c = conformance_model_config();
  c.layers = 3;
  c.experts = 8;
  c.experts_per_token = 2;
  c.moe_intermediate = 48;
  c.mlp_only_layers = {1};
  return c;
}

// `missing`: cuBLASLt's load error, when it is not found (its case is then reported as not run).
void moe_cases(Context& ctx, bool big, const std::string& missing) {
  // Qwen3-30B-A3B's MoE block: hidden 2048, 128 experts, top 8, moe_intermediate 768.
  const auto shape = [](int64_t T, int64_t H, int64_t I, int64_t E, int64_t K, bool norm) {
    MoeShape s;
    s.T = T, s.H = H, s.I = I, s.E = E, s.K = K, s.norm_topk = norm;
    return s;
  };
  if (wanted(ctx, "moe_route")) {
    moe_route_case(ctx, shape(7, 1, 1, 8, 2, true), false);
    moe_route_case(ctx, shape(7, 1, 1, 8, 3, false), false);
    moe_route_case(ctx, shape(9, 1, 1, 40, 4, true), true);     // ties; a lane owns two experts
    moe_route_case(ctx, shape(300, 1, 1, 16, 4, true), false);  // 1200 assignments: two sort chunks
    if (big) {
      moe_route_case(ctx, shape(64, 1, 1, 128, 8, true), false);
      moe_route_case(ctx, shape(4096, 1, 1, 128, 8, false), false);  // 32 sort chunks
    }
  }
  if (wanted(ctx, "moe_experts")) {
    moe_experts_case<float>(ctx, shape(9, 16, 12, 6, 2, true));
    moe_experts_case<float>(ctx, shape(3, 24, 20, 16, 2, false));  // most experts get no token
    if (big) moe_experts_case<float>(ctx, shape(3, 2048, 768, 128, 8, true));
  }
  if (wanted(ctx, "moe_experts_bf16")) {
    moe_experts_case<uint16_t>(ctx, shape(9, 16, 12, 6, 2, true));
    moe_experts_case<uint16_t>(ctx, shape(3, 24, 20, 16, 2, false));
    if (big) moe_experts_case<uint16_t>(ctx, shape(3, 2048, 768, 128, 8, true));
  }
  if (big && wanted(ctx, "moe_experts_bf16_cublaslt")) {
    const MoeShape s = shape(3, 2048, 768, 128, 8, true);
    if (missing.empty())
      moe_experts_case<uint16_t>(ctx, s, true);
    else
      not_run_case(ctx, "moe_experts_bf16_cublaslt", moe_shape_name(s), missing);
  }
  if (wanted(ctx, "moe_aux")) {
    moe_aux_case(ctx, shape(9, 1, 1, 8, 2, true));
    if (big) moe_aux_case(ctx, shape(64, 1, 1, 128, 8, true));
  }
  // The whole model, in f32 and in bf16 compute on the kernels whose bf16 products keep fp32 activations
  // as the CPU's do (as model_bf16; the bf16 tolerances are model_cases'). In bf16 the copy has the same
  // bits on both sides and the router's products differ by fp32 noise; the smallest gap between a token's
  // 2nd and 3rd router logits in its training forward is 6.7e-3 (7.2e-3 in f32), as far from a flip.
  const std::string what =
      "qwen3_moe layers=3 (sparse 0, 2) experts=8 top=2 moe_intermediate=48 hidden=64 T=16 (2 seqs): "
      "fwd+bwd+aux+adamw+decode";
  Tolerances tol{{"logp", kGemm},         {"entropy", kGemm},        {"aux_losses", kGemm},
                 {"expert_load", kExact}, {"grads", kAttentionGrad}, {"grad_norm", kGemm},
                 {"weights", kModelStep}, {"prefill_logits", kGemm}, {"decode_logits", kGemm}};
  auto model = [&](const char* op, const std::string& label, ComputeDType dtype, const Tolerances& t) {
    if (!wanted(ctx, op)) return;
    run_case(
        ctx, op, label, [&] { return model_step(cpu_backend(), conformance_moe_model_config(), dtype); },
        [&](GpuTimer& timer) {
          std::optional<EnvScope> linear, attention;
          if (dtype == ComputeDType::bf16) linear.emplace("MEDIX_CUDA_LINEAR", "tiled");
          if (dtype == ComputeDType::bf16) attention.emplace("MEDIX_CUDA_ATTENTION", "rowwise");
          timer.start();
          Outputs out = model_step(cuda::backend(), conformance_moe_model_config(), dtype);
          timer.stop();
          return out;
        },
        t);
  };
  model("moe_model", what, ComputeDType::f32, tol);
  tol["prefill_logits"] = tol["decode_logits"] = {kGemm.rtol, 0x1p-8};
  tol["weights"] = {kModelStep.rtol, 2e-3};
  model("moe_model_bf16", what + ", bf16 compute copy (router and experts) and KV cache", ComputeDType::bf16, tol);
}
