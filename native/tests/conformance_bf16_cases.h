// The bf16 compute copy on the CUDA backend against the CPU's bf16 entries: the conversion that makes
// the copy (kernels/bf16.cu), the linear layers reading it (the tiled kernel, and the Backend's entries
// that take cuBLASLt), and a whole small model computing in bf16 (conformance_model_cases.h). The bf16
// KV cache is in conformance_decode_cases.h. Included by cuda_conformance.cu inside its namespace.
//
// Tolerances:
// - to_bf16: the same definition on both sides (bf16.h), so the same bits, NaN payloads included.
// - from_bf16: a shift on both sides, so the same bits.
// - the tiled kernel widens W and keeps fp32 activations, as the CPU: only the order of the fp32 sums
//   differs (kGemm).
// - the cuBLASLt entries also round the activations (x; dy in backward) to bf16. On bf16-exact
//   activations that rounding is exact and each product is exact in fp32, so again kGemm. On any
//   activations each output moves by at most u = 2^-8 times its sum of magnitudes (u sum_k |x_k||W_ik|
//   for y, u sum_o |dy_o||W_oi| for dx, (2u + u^2) sum_t |dy_t||x_t| for dW: both factors rounded),
//   which the case computes with the CPU's bf16 entry on the magnitudes; that over the output's
//   largest value is its atol, plus kGemm's.
#pragma once

// ---- to_bf16 ------------------------------------------------------------------------------------
void to_bf16_case(Context& ctx, int64_t n) {
  Rng rng(22);
  std::vector<float> x = random_floats(rng, n, -1, 1);
  // Magnitudes over the whole exponent range, then the values where conversions differ: ties (odd and
  // even), a carry into the exponent, the largest finite float (rounds to inf), denormals (to a signed
  // zero), signed zeros, infinities and NaNs with payloads.
  for (int64_t i = 0; i < n; ++i) x[i] = std::ldexp(x[i], static_cast<int>(i % 250) - 125);
  auto bits = [](uint32_t u) {
    float f;
    std::memcpy(&f, &u, sizeof f);
    return f;
  };
  const std::vector<float> special = {bits(0x3f808000u),
                                      bits(0x3f818000u),
                                      bits(0x3fffffffu),
                                      bits(0x7f7fffffu),
                                      bits(0x00000001u),
                                      bits(0x807fffffu),
                                      0.0f,
                                      -0.0f,
                                      INFINITY,
                                      -INFINITY,
                                      bits(0x7fc00001u),
                                      bits(0xff812345u),
                                      bits(0x7f800001u)};
  for (size_t i = 0; i < special.size() && i < x.size(); ++i) x[i] = special[i];
  // The bits as float integers (exact below 2^24), so NaNs compare by their bits like any other value.
  auto as_numbers = [](const std::vector<uint16_t>& h) { return std::vector<float>(h.begin(), h.end()); };
  run_case(
      ctx, "to_bf16", to_string_shape({{"n", n}}),
      [&] {
        std::vector<uint16_t> h(x.size());
        f32_to_bf16(h.data(), x.data(), n);
        return Outputs{{"bits", as_numbers(h)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_x(x);
        DeviceBuffer<uint16_t> d_h(x.size());
        timer.start();
        cuda::to_bf16(as_bf16(d_h), d_x.get(), n);
        timer.stop();
        return Outputs{{"bits", as_numbers(d_h.to_host())}};
      },
      {{"bits", kExact}});
}

// ---- from_bf16 ----------------------------------------------------------------------------------
// Every one of the 65,536 bf16 bit patterns (NaNs, infinities, denormals, signed zeros among them), n
// values cycling through them: widening is exact, so the f32 bits must match, compared as their two
// 16-bit halves (exact as floats).
void from_bf16_case(Context& ctx, int64_t n) {
  std::vector<uint16_t> h(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) h[i] = static_cast<uint16_t>(i * 40503);  // odd step: a permutation
  auto halves = [](const std::vector<float>& f) {
    std::vector<float> hi(f.size()), lo(f.size());
    for (size_t i = 0; i < f.size(); ++i) {
      uint32_t u;
      std::memcpy(&u, &f[i], sizeof u);
      hi[i] = static_cast<float>(u >> 16), lo[i] = static_cast<float>(u & 0xffffu);
    }
    return Outputs{{"high_bits", hi}, {"low_bits", lo}};
  };
  run_case(
      ctx, "from_bf16", to_string_shape({{"n", n}}),
      [&] {
        std::vector<float> f(h.size());
        bf16_to_f32(f.data(), h.data(), n);
        return halves(f);
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<uint16_t> d_h(h);
        DeviceBuffer<float> d_f(h.size());
        timer.start();
        cuda::from_bf16(d_f.get(), as_bf16(d_h), n);
        timer.stop();
        return halves(d_f.to_host());
      },
      {{"high_bits", kExact}, {"low_bits", kExact}});
}

// ---- linear with bf16 weights ----------------------------------------------------------------------
// path "tiled": cuda::linear_* with a bf16 W; "cublaslt": the CUDA backend's LinearForwardBf16/LinearBackwardBf16 with
// MEDIX_CUDA_LINEAR=cublaslt (`missing`: cuBLASLt's load error, then the case is not run).
// exact_acts: x and dy hold bf16-exact values.
void linear_bf16_case(Context& ctx, const std::string& path, const std::string& missing, int64_t T, int64_t in,
                      int64_t out, bool bias, bool exact_acts) {
  const std::string op = "linear_bf16_" + path;
  const std::string shape = to_string_shape({{"T", T}, {"in", in}, {"out", out}, {"bias", bias}}) +
                            (exact_acts ? " bf16-exact activations" : " fp32 activations");
  if (path == "cublaslt" && !missing.empty()) return not_run_case(ctx, op, shape, missing);
  Rng rng(exact_acts ? 23 : 24);
  auto acts = [&](int64_t n) { return exact_acts ? random_bf16_values(rng, n, -1, 1) : random_floats(rng, n, -1, 1); };
  const std::vector<float> x = acts(T * in), dy = acts(T * out);
  const std::vector<uint16_t> W = to_bf16(random_floats(rng, out * in, -1, 1));
  const std::vector<float> b = bias ? random_floats(rng, out, -1, 1) : std::vector<float>{};
  const std::vector<float> dx0 = random_floats(rng, T * in, -1, 1), dW0 = random_floats(rng, out * in, -1, 1);
  const std::vector<float> db0 = bias ? random_floats(rng, out, -1, 1) : std::vector<float>{};
  // The CPU's bf16 entries, on these inputs or (magnitudes) on |x|, |dy|, |W| from zero gradients.
  auto cpu_run = [&](const std::vector<float>& xs, const std::vector<float>& dys, const std::vector<uint16_t>& Ws,
                     bool from_zero) {
    std::vector<float> y(T * out), dx = from_zero ? std::vector<float>(dx0.size()) : dx0;
    std::vector<float> dW = from_zero ? std::vector<float>(dW0.size()) : dW0, db = db0;
    cpu::linear_forward_bf16(y.data(), xs.data(), Ws.data(), bias ? b.data() : nullptr, T, in, out);
    cpu::linear_backward_bf16(dx.data(), dW.data(), bias ? db.data() : nullptr, dys.data(), xs.data(), Ws.data(), T, in,
                              out);
    Outputs o{{"y", std::move(y)}, {"dx", std::move(dx)}, {"dW", std::move(dW)}};
    if (bias) o["db"] = std::move(db);
    return o;
  };
  Tolerances tol{{"y", kGemm}, {"dx", kGemm}, {"dW", kGemm}, {"db", kRowReduction}};
  if (path == "cublaslt" && !exact_acts) {
    auto mag = [](std::vector<float> v) {
      for (float& e : v) e = std::fabs(e);
      return v;
    };
    std::vector<uint16_t> W_mag = W;
    for (uint16_t& h : W_mag) h &= 0x7fffu;
    const Outputs want = cpu_run(x, dy, W, false), sums = cpu_run(mag(x), mag(dy), W_mag, true);
    const double u = 1.0 / 256;
    for (const auto& [name, factor] : std::map<std::string, double>{{"y", u}, {"dx", u}, {"dW", 2 * u + u * u}}) {
      double s = 0, scale = 0;
      for (float e : sums.at(name)) s = std::max(s, static_cast<double>(e));
      for (float e : want.at(name)) scale = std::max(scale, static_cast<double>(std::fabs(e)));
      tol[name] = {kGemm.rtol, kGemm.atol + factor * s / scale};
    }
  }
  run_case(
      ctx, op, shape, [&] { return cpu_run(x, dy, W, false); },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_x(x), d_b(b), d_dy(dy), d_dx(dx0), d_dW(dW0), d_db(db0), d_y(T * out);
        DeviceBuffer<uint16_t> d_W(W);
        float* db_ptr = bias ? d_db.get() : nullptr;
        const float* b_ptr = bias ? d_b.get() : nullptr;
        timer.start();
        if (path == "tiled") {
          cuda::linear_forward(d_y.get(), d_x.get(), as_bf16(d_W), b_ptr, T, in, out);
          cuda::linear_backward(d_dx.get(), d_dW.get(), db_ptr, d_dy.get(), d_x.get(), as_bf16(d_W), T, in, out);
        } else {
          // The backend falls back to the tiled kernel, silently, on an unaligned operand: that would
          // pass this case without running cuBLASLt.
          for (const void* p : {static_cast<const void*>(d_x.get()), static_cast<const void*>(d_dy.get()),
                                static_cast<const void*>(d_dx.get()), static_cast<const void*>(d_dW.get()),
                                static_cast<const void*>(d_y.get()), static_cast<const void*>(d_W.get())})
            MEDIX_CHECK(cuda::blas_aligned(p), op, ": an operand is not 256-byte aligned; cuBLASLt would not run");
          const EnvScope blas("MEDIX_CUDA_LINEAR", "cublaslt");
          Backend& be = cuda::backend();
          be.run<LinearForwardBf16>(d_y.get(), d_x.get(), d_W.get(), b_ptr, T, in, out);
          be.run<LinearBackwardBf16>(d_dx.get(), d_dW.get(), db_ptr, d_dy.get(), d_x.get(), d_W.get(), T, in, out);
        }
        timer.stop();
        Outputs o{{"y", d_y.to_host()}, {"dx", d_dx.to_host()}, {"dW", d_dW.to_host()}};
        if (bias) o["db"] = d_db.to_host();
        return o;
      },
      tol);
}

void bf16_cases(Context& ctx, bool big, const std::string& missing) {
  if (wanted(ctx, "to_bf16")) {
    to_bf16_case(ctx, 1000);
    if (big) to_bf16_case(ctx, 4 * 2048 * 2048 + 17);
  }
  if (wanted(ctx, "from_bf16")) {
    from_bf16_case(ctx, 65536);
    if (big) from_bf16_case(ctx, 4 * 2048 * 2048 + 17);
  }
  if (wanted(ctx, "linear_bf16_tiled")) {
    linear_bf16_case(ctx, "tiled", missing, 5, 7, 9, true, false);
    linear_bf16_case(ctx, "tiled", missing, 70, 33, 65, false, false);
    if (big) linear_bf16_case(ctx, "tiled", missing, 512, 2048, 6144, false, false);
  }
  if (wanted(ctx, "linear_bf16_cublaslt")) {
    linear_bf16_case(ctx, "cublaslt", missing, 16, 24, 40, false, true);
    linear_bf16_case(ctx, "cublaslt", missing, 16, 24, 40, false, false);
    linear_bf16_case(ctx, "cublaslt", missing, 16, 24, 40, true, true);
    if (big) {
      linear_bf16_case(ctx, "cublaslt", missing, 2048, 2048, 6144, false, true);
      linear_bf16_case(ctx, "cublaslt", missing, 2048, 2048, 6144, false, false);
    }
  }
}
