// The attention conformance cases (kernels/attention.cu against native/ops/attention.h), kept apart
// from the rest of the program so that attention work and the harness's own evolution merge
// cleanly. Included by cuda_conformance.cu inside its namespace, after run_case and the tolerances.
//
// Tolerances: the forward is a softmax-weighted sum (online on the GPU, two-pass on the CPU), so
// GEMM-like rounding (kGemm); gradients sum up to T products of differences (dP - delta): kGemm's atol
// with a looser element-wise term (kAttentionGrad) for the many near-zero entries. Determinism (two
// GPU runs, same bits) is checked by run_case for every case.
#pragma once

// One case's inputs: seeded q, k, v, dout and the gradients' starting values (the op adds to them).
struct AttentionInputs {
  AttentionShape s;  // cu_seqlens unset: shape() points it at cu, so a copy never points into another
  AttentionShape shape() const {
    AttentionShape with_cu = s;
    with_cu.cu_seqlens = cu.data();
    return with_cu;
  }
  std::vector<int32_t> cu;
  std::vector<float> q, k, v, dout, dq0, dk0, dv0;
  std::string label;
};

AttentionInputs attention_inputs(const std::vector<int32_t>& cu, int64_t heads, int64_t kv_heads, int64_t head_dim,
                                 bool causal) {
  Rng rng(20);
  AttentionInputs in;
  in.cu = cu;
  AttentionShape& s = in.s;
  s.T = cu.back();
  s.n_heads = heads;
  s.n_kv_heads = kv_heads;
  s.head_dim = head_dim;
  s.n_seqs = static_cast<int64_t>(cu.size()) - 1;
  s.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  s.causal = causal;
  const int64_t nq = s.T * heads * head_dim, nkv = s.T * kv_heads * head_dim;
  in.q = random_floats(rng, nq, -2, 2);
  in.k = random_floats(rng, nkv, -2, 2);
  in.v = random_floats(rng, nkv, -1, 1);
  in.dout = random_floats(rng, nq, -1, 1);
  in.dq0 = random_floats(rng, nq, -1, 1);
  in.dk0 = random_floats(rng, nkv, -1, 1);
  in.dv0 = random_floats(rng, nkv, -1, 1);
  std::string seqs;
  for (size_t i = 1; i < cu.size(); ++i) seqs += (i > 1 ? "," : "") + std::to_string(cu[i] - cu[i - 1]);
  in.label = to_string_shape({{"T", s.T}, {"heads", heads}, {"kv_heads", kv_heads}, {"head_dim", head_dim}}) +
             " seqs=" + seqs + (causal ? "" : " bidirectional");
  return in;
}

// The CPU reference, forward then backward, on the given q, k, v, dout; the gradients start from the
// inputs' dq0, dk0, dv0, or from zero.
Outputs cpu_attention(const AttentionInputs& in, const std::vector<float>& q, const std::vector<float>& k,
                      const std::vector<float>& v, const std::vector<float>& dout, bool from_zero = false) {
  const AttentionShape s = in.shape();
  std::vector<float> out(q.size()), lse(s.T * s.n_heads), dq = in.dq0, dk = in.dk0, dv = in.dv0;
  if (from_zero)
    for (std::vector<float>* g : {&dq, &dk, &dv}) std::fill(g->begin(), g->end(), 0.0f);
  cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), s);
  cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), out.data(), lse.data(), q.data(), k.data(),
                          v.data(), s);
  return Outputs{{"out", std::move(out)},
                 {"lse", std::move(lse)},
                 {"dq", std::move(dq)},
                 {"dk", std::move(dk)},
                 {"dv", std::move(dv)}};
}

// The GPU's forward then backward on the inputs, with s (its bf16_operands included). The backward
// reads the forward's out and lse, or, given `saved`, those outputs of the CPU reference: then it is
// checked on exactly the reference's inputs, apart from the forward's own error.
Outputs gpu_attention(const AttentionInputs& in, const AttentionShape& s, GpuTimer& timer,
                      const Outputs* saved = nullptr) {
  DeviceBuffer<int32_t> d_cu(in.cu);
  DeviceBuffer<float> d_q(in.q), d_k(in.k), d_v(in.v), d_dout(in.dout), d_dq(in.dq0), d_dk(in.dk0), d_dv(in.dv0);
  DeviceBuffer<float> d_out(in.q.size()), d_lse(s.T * s.n_heads);
  DeviceBuffer<float> saved_out(saved ? saved->at("out") : std::vector<float>{});
  DeviceBuffer<float> saved_lse(saved ? saved->at("lse") : std::vector<float>{});
  timer.start();
  cuda::attention_forward(d_out.get(), d_lse.get(), d_q.get(), d_k.get(), d_v.get(), d_cu.get(), s);
  cuda::attention_backward(d_dq.get(), d_dk.get(), d_dv.get(), d_dout.get(), saved ? saved_out.get() : d_out.get(),
                           saved ? saved_lse.get() : d_lse.get(), d_q.get(), d_k.get(), d_v.get(), d_cu.get(), s);
  timer.stop();
  return Outputs{{"out", d_out.to_host()},
                 {"lse", d_lse.to_host()},
                 {"dq", d_dq.to_host()},
                 {"dk", d_dk.to_host()},
                 {"dv", d_dv.to_host()}};
}

void attention_case(Context& ctx, const std::vector<int32_t>& cu, int64_t heads, int64_t kv_heads, int64_t head_dim,
                    bool causal = true) {
  const AttentionInputs in = attention_inputs(cu, heads, kv_heads, head_dim, causal);
  run_case(
      ctx, "attention", in.label, [&] { return cpu_attention(in, in.q, in.k, in.v, in.dout); },
      [&](GpuTimer& timer) { return gpu_attention(in, in.shape(), timer); },
      // The forward is a softmax-weighted sum (online on the GPU, two-pass on the CPU): GEMM-like
      // rounding. Gradients sum up to T products of differences (dP - delta): kGemm's atol, with a
      // looser element-wise term for the many near-zero entries.
      {{"out", kGemm}, {"lse", kGemm}, {"dq", kAttentionGrad}, {"dk", kAttentionGrad}, {"dv", kAttentionGrad}});
}

// ---- bf16 operands on tensor cores (kernels/attention_flash.cu) -----------------------------------
// The reference is the fp32 CPU op on q, k, v and dout rounded to bf16, the rounding the kernels apply
// when they load a tile (the same round-to-nearest-even, so the same values; delta = bf16(dO) . O on
// both sides). The GPU's backward reads the reference's out and lse, so that it sees the reference's
// inputs exactly and the forward's error is not counted twice. What remains is the kernels' own
// rounding, u = 2^-8 relative, of the probabilities P (as an operand of P V and P^T dO) and of dS (as
// an operand of dS K and dS^T Q), plus fp32 summation order. Bounds per output, each over the output's
// largest value added to the fp32 case's atol:
//   out: u sum_j p_ij |v_j| <= u max|v| (the row sum l is the fp32 one, so the weights still sum to 1);
//   dv:  u sum_i p_ij |dO_i|, which is the CPU op's dv on |dO| from zero;
//   dq:  u scale max|k| sum_j |dS_ij|, and dk: u scale max|q| sum over queries (and heads) of |dS_ij|,
//        with |dS| computed directly over every (query, key) pair the mask allows.
// A numpy emulation of the kernels (their tile walk, rounding points and masks; 4, 2 and 1 warps) came
// within 0.56 of these bounds on the tiny cases, while a mask off by one, a dropped tile, a wrong kv
// head, a gradient never added, or delta from the unrounded dO failed them.
constexpr double kBf16Unit = 0x1p-8;  // u: round to nearest with 8 significant bits moves x by <= u |x|

struct Bf16AttentionBounds {
  double out = 0, dq = 0, dk = 0;
};

double max_abs_of(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

Bf16AttentionBounds bf16_attention_bounds(const AttentionInputs& in, const std::vector<float>& q,
                                          const std::vector<float>& k, const std::vector<float>& v,
                                          const std::vector<float>& dout, const Outputs& ref) {
  const AttentionShape& s = in.s;
  const int64_t H = s.n_heads, KV = s.n_kv_heads, D = s.head_dim, group = H / KV;
  const double u = kBf16Unit, max_v = max_abs_of(v);
  const std::vector<float>& out = ref.at("out");
  const std::vector<float>& lse = ref.at("lse");
  auto dot = [D](const float* a, const float* b) {
    double acc = 0;
    for (int64_t d = 0; d < D; ++d) acc += static_cast<double>(a[d]) * b[d];
    return acc;
  };
  std::vector<double> key_sums(s.T * KV, 0.0);              // per (key, kv head): sum over queries of |dS|
  std::vector<double> dq_worst(KV, 0.0);                    // per kv head, the largest sum over keys of |dS|
  parallel_for(KV, [&](int64_t kv_begin, int64_t kv_end) {  // a kv head's sums are its own
    for (int64_t kvh = kv_begin; kvh < kv_end; ++kvh)
      for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h)
        for (int64_t seq = 0; seq < s.n_seqs; ++seq) {
          const int64_t b = in.cu[seq], e = in.cu[seq + 1];
          for (int64_t i = b; i < e; ++i) {
            const float* qi = q.data() + (i * H + h) * D;
            const float* doi = dout.data() + (i * H + h) * D;
            const double delta = dot(doi, out.data() + (i * H + h) * D), l = lse[i * H + h];
            double ds_sum = 0;
            for (int64_t j = b; j < (s.causal ? i + 1 : e); ++j) {
              const int64_t kv_row = (j * KV + kvh) * D;
              const double p = std::exp(s.scale * dot(qi, k.data() + kv_row) - l);
              const double ds = std::fabs(p * (dot(doi, v.data() + kv_row) - delta));
              ds_sum += ds;
              key_sums[j * KV + kvh] += ds;
            }
            dq_worst[kvh] = std::max(dq_worst[kvh], ds_sum);
          }
        }
  });
  Bf16AttentionBounds bounds;
  bounds.out = u * max_v;
  bounds.dq = u * s.scale * max_abs_of(k) * *std::max_element(dq_worst.begin(), dq_worst.end());
  bounds.dk = u * s.scale * max_abs_of(q) * *std::max_element(key_sums.begin(), key_sums.end());
  return bounds;
}

void attention_bf16_case(Context& ctx, const std::vector<int32_t>& cu, int64_t heads, int64_t kv_heads,
                         int64_t head_dim, bool causal = true) {
  const AttentionInputs in = attention_inputs(cu, heads, kv_heads, head_dim, causal);
  auto rounded = [](std::vector<float> x) {
    for (float& e : x) e = bf16_value(bf16_bits(e));
    return x;
  };
  const std::vector<float> q = rounded(in.q), k = rounded(in.k), v = rounded(in.v), dout = rounded(in.dout);
  Tolerances tol;  // filled by the CPU side, which run_case calls before the GPU side and the comparison
  Outputs saved;   // the reference's out and lse, for the GPU's backward
  run_case(
      ctx, "attention_bf16_flash", in.label,
      [&] {
        Outputs ref = cpu_attention(in, q, k, v, dout);
        const Bf16AttentionBounds b = bf16_attention_bounds(in, q, k, v, dout, ref);
        // dv's bound: the op's own dv on |dO|, from zero gradients.
        std::vector<float> dout_abs = dout;
        for (float& e : dout_abs) e = std::fabs(e);
        const double dv_bound = kBf16Unit * max_abs_of(cpu_attention(in, q, k, v, dout_abs, true).at("dv"));
        auto widened = [&](Tolerance t, double bound, const char* name) {
          const double scale = max_abs_of(ref.at(name));
          return Tolerance{t.rtol, t.atol + (scale > 0 ? bound / scale : 0.0)};
        };
        saved = {{"out", ref.at("out")}, {"lse", ref.at("lse")}};
        tol = {{"out", widened(kGemm, b.out, "out")},
               {"lse", kGemm},
               {"dq", widened(kAttentionGrad, b.dq, "dq")},
               {"dk", widened(kAttentionGrad, b.dk, "dk")},
               {"dv", widened(kAttentionGrad, dv_bound, "dv")}};
        return ref;
      },
      [&](GpuTimer& timer) {
        AttentionShape s = in.shape();
        s.bf16_operands = true;
        const EnvScope flash("MEDIX_CUDA_ATTENTION", "flash");  // fail rather than fall back
        return gpu_attention(in, s, timer, &saved);
      },
      tol);
}

// Tiny shapes (head_dims that fill whole warps and ones that leave lanes idle: 16, 72 as the Qwen3-VL
// 4B/8B vision towers, 200; an empty sequence; bidirectional), then Qwen3's
// (head_dim 128, 16 query heads over 8 kv heads) up to 4k packed tokens of uneven lengths, a
// one-token sequence included: a few seconds each on the CPU reference, well under one on the GPU.
void attention_cases(Context& ctx, bool big) {
  attention_case(ctx, {0, 5, 5, 13}, 4, 2, 32);  // an empty sequence in the middle
  attention_case(ctx, {0, 9}, 2, 1, 64);
  attention_case(ctx, {0, 3, 7}, 2, 2, 128);
  attention_case(ctx, {0, 6, 6, 11}, 4, 1, 256, false);  // bidirectional (the vision tower)
  attention_case(ctx, {0, 4, 9}, 2, 1, 16);
  attention_case(ctx, {0, 7, 16}, 3, 3, 72, false);
  attention_case(ctx, {0, 10}, 2, 2, 200);
  if (!big) return;
  attention_case(ctx, {0, 2048}, 16, 8, 128);
  attention_case(ctx, {0, 300, 1324, 2048}, 16, 8, 128);
  attention_case(ctx, {0, 1, 1537, 1600, 4096}, 16, 8, 128);
  attention_case(ctx, {0, 729, 1025}, 16, 8, 128, false);
  attention_case(ctx, {0, 1024, 1600}, 16, 16, 72, false);  // a Qwen3-VL-8B vision tower's two images
}

// The tensor-core kernels at the same shapes: tiles of 64 with partial ones, every padded head_dim
// (16 to 256; 72 and 200, not multiples of 16, padded), empty and one-token sequences, both masks.
void attention_bf16_cases(Context& ctx, bool big) {
  attention_bf16_case(ctx, {0, 5, 5, 13}, 4, 2, 32);
  attention_bf16_case(ctx, {0, 9}, 2, 1, 64);
  attention_bf16_case(ctx, {0, 3, 7}, 2, 2, 128);
  attention_bf16_case(ctx, {0, 6, 6, 11}, 4, 1, 256, false);
  attention_bf16_case(ctx, {0, 4, 9}, 2, 1, 16);
  attention_bf16_case(ctx, {0, 7, 16}, 3, 3, 72, false);
  attention_bf16_case(ctx, {0, 10}, 2, 2, 200);
  attention_bf16_case(ctx, {0, 1, 131, 200}, 4, 2, 128);      // several tiles, partial ones
  attention_bf16_case(ctx, {0, 100, 230}, 2, 2, 256, false);  // D = 256 over several tiles
  if (!big) return;
  attention_bf16_case(ctx, {0, 300, 1324, 2048}, 16, 8, 128);
  attention_bf16_case(ctx, {0, 1, 1537, 1600, 4096}, 16, 8, 128);
  attention_bf16_case(ctx, {0, 729, 1025}, 16, 8, 128, false);
  attention_bf16_case(ctx, {0, 1024, 1600}, 16, 16, 72, false);
}
