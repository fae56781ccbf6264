// The vision tower's conformance cases (kernels/layernorm.cu and kernels/gelu.cu against
// native/ops/layernorm.h and gelu.h), at tiny shapes and a Qwen3-VL-2B vision tower's (hidden 1024,
// MLP 4096, 4096 patches of a 1024 x 1024 image). Included by cuda_conformance.cu inside its namespace,
// after run_case and the tolerances.
//
// Tolerances: LayerNorm's row statistics are fp32 warp sums on the GPU and double on the CPU, and the
// gradients follow from them (kRowReduction, as RMSNorm); dw and db sum over up to 4096 rows in
// different orders (kGemm). GELU is element-wise: the GPU's tanhf/erff/expf differ from the CPU's by an
// ulp or two; near x = -4 the factor (1 + tanh) cancels to ~1e-4 on both sides, so the error is
// relative to the output's size, not the element's (kUlps's atol term).
#pragma once

void layernorm_case(Context& ctx, int64_t rows, int64_t dim) {
  Rng rng(30);
  const float eps = 1e-6f;
  const std::vector<float> x = random_floats(rng, rows * dim, -2, 3), w = random_floats(rng, dim, 0.5f, 1.5f);
  const std::vector<float> b = random_floats(rng, dim, -0.5f, 0.5f), dout = random_floats(rng, rows * dim, -1, 1);
  const std::vector<float> dx0 = random_floats(rng, rows * dim, -1, 1), dw0 = random_floats(rng, dim, -1, 1);
  const std::vector<float> db0 = random_floats(rng, dim, -1, 1);
  run_case(
      ctx, "layernorm", to_string_shape({{"rows", rows}, {"dim", dim}}),
      [&] {
        std::vector<float> out(rows * dim), mean(rows), rstd(rows), dx = dx0, dw = dw0, db = db0;
        cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), rows, dim, eps);
        cpu::layernorm_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), mean.data(),
                                rstd.data(), rows, dim);
        return Outputs{{"out", std::move(out)}, {"mean", std::move(mean)}, {"rstd", std::move(rstd)},
                       {"dx", std::move(dx)},   {"dw", std::move(dw)},     {"db", std::move(db)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_x(x), d_w(w), d_b(b), d_dout(dout), d_dx(dx0), d_dw(dw0), d_db(db0);
        DeviceBuffer<float> d_out(rows * dim), d_mean(rows), d_rstd(rows);
        timer.start();
        cuda::layernorm_forward(d_out.get(), d_mean.get(), d_rstd.get(), d_x.get(), d_w.get(), d_b.get(), rows, dim,
                                eps);
        cuda::layernorm_backward(d_dx.get(), d_dw.get(), d_db.get(), d_dout.get(), d_x.get(), d_w.get(), d_mean.get(),
                                 d_rstd.get(), rows, dim);
        timer.stop();
        return Outputs{{"out", d_out.to_host()}, {"mean", d_mean.to_host()}, {"rstd", d_rstd.to_host()},
                       {"dx", d_dx.to_host()},   {"dw", d_dw.to_host()},     {"db", d_db.to_host()}};
      },
      {{"out", kRowReduction},
       {"mean", kRowReduction},
       {"rstd", kRowReduction},
       {"dx", kRowReduction},
       {"dw", kGemm},
       {"db", kGemm}});
}

void gelu_case(Context& ctx, int64_t n, cpu::GeluKind kind) {
  Rng rng(31);
  const std::vector<float> x = random_floats(rng, n, -6, 6), dout = random_floats(rng, n, -1, 1);
  const std::vector<float> dx0 = random_floats(rng, n, -1, 1);
  run_case(
      ctx, "gelu", std::string(kind == cpu::GeluKind::kTanh ? "tanh " : "erf ") + to_string_shape({{"n", n}}),
      [&] {
        std::vector<float> out(n), dx = dx0;
        cpu::gelu_forward(out.data(), x.data(), n, kind);
        cpu::gelu_backward(dx.data(), dout.data(), x.data(), n, kind);
        return Outputs{{"out", std::move(out)}, {"dx", std::move(dx)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_x(x), d_dout(dout), d_dx(dx0), d_out(n);
        timer.start();
        cuda::gelu_forward(d_out.get(), d_x.get(), n, kind);
        cuda::gelu_backward(d_dx.get(), d_dout.get(), d_x.get(), n, kind);
        timer.stop();
        return Outputs{{"out", d_out.to_host()}, {"dx", d_dx.to_host()}};
      },
      {{"out", kUlps}, {"dx", kUlps}});
}

void vision_cases(Context& ctx, bool big) {
  if (wanted(ctx, "layernorm")) {
    layernorm_case(ctx, 5, 24);
    layernorm_case(ctx, 130, 72);  // more than one chunk of rows for dw and db
    if (big) layernorm_case(ctx, 4096, 1024);
  }
  if (wanted(ctx, "gelu")) {
    for (const cpu::GeluKind kind : {cpu::GeluKind::kTanh, cpu::GeluKind::kErf}) {
      gelu_case(ctx, 37, kind);
      if (big) gelu_case(ctx, 4096 * 4096, kind);
    }
  }
}
