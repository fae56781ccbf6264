// The vision tower's conformance cases (kernels/layernorm.cu, gelu.cu, vision_rope.cu and
// vision_pos_embed.cu against native/ops/layernorm.h, gelu.h, vision_rope.h and vision_pos_embed.h), at
// tiny shapes and a Qwen3-VL-2B vision tower's (hidden 1024, MLP 4096, 16 heads of 64, 4096 patches of a
// 1024 x 1024 image; the rotary and position-embedding cases take two images of different sizes, merge 2,
// a 48 x 48 position table). Included by cuda_conformance.cu inside its namespace, after run_case and the
// tolerances.
//
// Tolerances: LayerNorm's row statistics are fp32 warp sums on the GPU and double on the CPU, and the
// gradients follow from them (kRowReduction, as RMSNorm); dw and db sum over up to 4096 rows in
// different orders (kGemm). GELU is element-wise: the GPU's tanhf/erff/expf differ from the CPU's by an
// ulp or two; near x = -4 the factor (1 + tanh) cancels to ~1e-4 on both sides, so the error is
// relative to the output's size, not the element's (kUlps's atol term).
// The vision rotary embedding uses the CPU's frequencies and angles and its float operations (the fmas
// GCC makes of them in this build, -march=x86-64-v3); only cos and sin may differ, by an ulp (the GPU
// rounds double cos/sin, the CPU calls glibc's cosf/sinf). An output element then differs by at most
// ulp(cos) |a| + ulp(sin) |b| <= 1.2e-7 max |x|, about 1e-7 of the output's size, under kUlps's atol
// term even where a cos - b sin cancels: kUlps. The position embedding uses the CPU's taps and the CPU's
// fused multiply-adds in the CPU's order, forward and backward (a gather in the CPU's order, no
// atomics): the same bits, kExact.
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

// Patches of `grids`, their rotary coordinates (merge-block order with merge 2, as Qwen3-VL's tower) and
// random q/k-like activations; the output is also computed in place, as the tower applies it to q and k.
void vision_rope_case(Context& ctx, const char* what, const std::vector<ImageGrid>& grids, int64_t heads, int64_t D,
                      float theta) {
  Rng rng(32);
  const std::vector<int32_t> coords = vision_patch_coords(grids, 2);
  const int64_t T = patch_count(grids), n = T * heads * D;
  const std::vector<float> x = random_floats(rng, n, -2, 2), dout = random_floats(rng, n, -1, 1);
  const std::vector<float> dx0 = random_floats(rng, n, -1, 1);
  run_case(
      ctx, "vision_rope", std::string(what) + " " + to_string_shape({{"T", T}, {"heads", heads}, {"D", D}}),
      [&] {
        std::vector<float> out(n), in_place = x, dx = dx0;
        cpu::vision_rope_forward(out.data(), x.data(), coords.data(), T, heads, D, theta);
        cpu::vision_rope_forward(in_place.data(), in_place.data(), coords.data(), T, heads, D, theta);
        cpu::vision_rope_backward(dx.data(), dout.data(), coords.data(), T, heads, D, theta);
        return Outputs{{"out", std::move(out)}, {"in_place", std::move(in_place)}, {"dx", std::move(dx)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<int32_t> d_coords(coords);
        DeviceBuffer<float> d_x(x), d_in_place(x), d_dout(dout), d_dx(dx0), d_out(n);
        timer.start();
        cuda::vision_rope_forward(d_out.get(), d_x.get(), d_coords.get(), T, heads, D, theta);
        cuda::vision_rope_forward(d_in_place.get(), d_in_place.get(), d_coords.get(), T, heads, D, theta);
        cuda::vision_rope_backward(d_dx.get(), d_dout.get(), d_coords.get(), T, heads, D, theta);
        timer.stop();
        return Outputs{{"out", d_out.to_host()}, {"in_place", d_in_place.to_host()}, {"dx", d_dx.to_host()}};
      },
      {{"out", kUlps}, {"in_place", kUlps}, {"dx", kUlps}});
}

std::string grids_label(const std::vector<ImageGrid>& grids) {
  std::string s;
  for (const ImageGrid& g : grids)
    s += (s.empty() ? "" : ",") + std::to_string(g.t) + "x" + std::to_string(g.h) + "x" + std::to_string(g.w);
  return s;
}

void vision_pos_embed_case(Context& ctx, const std::vector<ImageGrid>& grids, int64_t merge, int64_t side,
                           int64_t dim) {
  Rng rng(33);
  const int64_t N = patch_count(grids), rows = side * side;
  const std::vector<float> table = random_floats(rng, rows * dim, -1, 1), dout = random_floats(rng, N * dim, -1, 1);
  const std::vector<float> dtable0 = random_floats(rng, rows * dim, -1, 1);
  run_case(
      ctx, "vision_pos_embed",
      "grids " + grids_label(grids) + " " + to_string_shape({{"merge", merge}, {"side", side}, {"dim", dim}}),
      [&] {
        std::vector<float> out(N * dim), dtable = dtable0;
        cpu::vision_pos_embed_forward(out.data(), table.data(), grids, merge, side, dim);
        cpu::vision_pos_embed_backward(dtable.data(), dout.data(), grids, merge, side, dim);
        return Outputs{{"out", std::move(out)}, {"dtable", std::move(dtable)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_table(table), d_dout(dout), d_dtable(dtable0), d_out(N * dim);
        timer.start();
        cuda::vision_pos_embed_forward(d_out.get(), d_table.get(), grids, merge, side, dim);
        cuda::vision_pos_embed_backward(d_dtable.get(), d_dout.get(), grids, merge, side, dim);
        timer.stop();
        return Outputs{{"out", d_out.to_host()}, {"dtable", d_dtable.to_host()}};
      },
      {{"out", kExact}, {"dtable", kExact}});
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
  // Qwen3-VL-2B: a 512 x 704 image (32 x 44 patches) and a two-frame 320 x 448 video (20 x 28).
  const std::vector<ImageGrid> qwen_grids = {{1, 32, 44}, {2, 20, 28}};
  if (wanted(ctx, "vision_rope")) {
    vision_rope_case(ctx, "two images", {{1, 2, 4}, {2, 4, 2}}, 3, 8, 10000.0f);
    vision_rope_case(ctx, "D/4 odd", {{1, 4, 6}}, 2, 12, 10000.0f);
    vision_rope_case(ctx, "wide", {{1, 2, 1000}}, 1, 16, 10000.0f);  // angles up to ~1000 rad
    if (big) vision_rope_case(ctx, "qwen3-vl", qwen_grids, 16, 64, 10000.0f);
  }
  if (wanted(ctx, "vision_pos_embed")) {
    vision_pos_embed_case(ctx, {{1, 2, 4}, {2, 4, 2}}, 2, 4, 3);
    // Grids finer than the table: several patches share each table row (the backward's lists).
    vision_pos_embed_case(ctx, {{2, 8, 6}, {1, 10, 12}}, 2, 4, 37);
    if (big) vision_pos_embed_case(ctx, qwen_grids, 2, 48, 1024);
  }
}
