// The attention conformance cases (kernels/attention.cu against native/ops/attention.h), kept apart
// from the rest of the program so that attention work and the harness's own evolution merge
// cleanly. Included by cuda_conformance.cu inside its namespace, after run_case and the tolerances.
//
// Tolerances: the forward is a softmax-weighted sum (online on the GPU, two-pass on the CPU), so
// GEMM-like rounding (kGemm); gradients sum up to T products of differences (dP - delta): kGemm's atol
// with a looser element-wise term (kAttentionGrad) for the many near-zero entries. Determinism (two
// GPU runs, same bits) is checked by run_case for every case.
#pragma once

void attention_case(Context& ctx, const std::vector<int32_t>& cu, int64_t heads, int64_t kv_heads, int64_t head_dim,
                    bool causal = true) {
  Rng rng(20);
  AttentionShape s;
  s.T = cu.back();
  s.n_heads = heads;
  s.n_kv_heads = kv_heads;
  s.head_dim = head_dim;
  s.cu_seqlens = cu.data();
  s.n_seqs = static_cast<int64_t>(cu.size()) - 1;
  s.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  s.causal = causal;
  const int64_t nq = s.T * heads * head_dim, nkv = s.T * kv_heads * head_dim;
  const std::vector<float> q = random_floats(rng, nq, -2, 2), k = random_floats(rng, nkv, -2, 2);
  const std::vector<float> v = random_floats(rng, nkv, -1, 1), dout = random_floats(rng, nq, -1, 1);
  const std::vector<float> dq0 = random_floats(rng, nq, -1, 1), dk0 = random_floats(rng, nkv, -1, 1);
  const std::vector<float> dv0 = random_floats(rng, nkv, -1, 1);
  std::string seqs;
  for (size_t i = 1; i < cu.size(); ++i) seqs += (i > 1 ? "," : "") + std::to_string(cu[i] - cu[i - 1]);
  run_case(
      ctx, "attention",
      to_string_shape({{"T", s.T}, {"heads", heads}, {"kv_heads", kv_heads}, {"head_dim", head_dim}}) +
          " seqs=" + seqs + (causal ? "" : " bidirectional"),
      [&] {
        std::vector<float> out(nq), lse(s.T * heads), dq = dq0, dk = dk0, dv = dv0;
        cpu::attention_forward(out.data(), lse.data(), q.data(), k.data(), v.data(), s);
        cpu::attention_backward(dq.data(), dk.data(), dv.data(), dout.data(), out.data(), lse.data(), q.data(),
                                k.data(), v.data(), s);
        return Outputs{{"out", std::move(out)},
                       {"lse", std::move(lse)},
                       {"dq", std::move(dq)},
                       {"dk", std::move(dk)},
                       {"dv", std::move(dv)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<int32_t> d_cu(cu);
        DeviceBuffer<float> d_q(q), d_k(k), d_v(v), d_dout(dout), d_dq(dq0), d_dk(dk0), d_dv(dv0);
        DeviceBuffer<float> d_out(nq), d_lse(s.T * heads);
        timer.start();
        cuda::attention_forward(d_out.get(), d_lse.get(), d_q.get(), d_k.get(), d_v.get(), d_cu.get(), s);
        cuda::attention_backward(d_dq.get(), d_dk.get(), d_dv.get(), d_dout.get(), d_out.get(), d_lse.get(), d_q.get(),
                                 d_k.get(), d_v.get(), d_cu.get(), s);
        timer.stop();
        return Outputs{{"out", d_out.to_host()},
                       {"lse", d_lse.to_host()},
                       {"dq", d_dq.to_host()},
                       {"dk", d_dk.to_host()},
                       {"dv", d_dv.to_host()}};
      },
      // The forward is a softmax-weighted sum (online on the GPU, two-pass on the CPU): GEMM-like
      // rounding. Gradients sum up to T products of differences (dP - delta): kGemm's atol, with a
      // looser element-wise term for the many near-zero entries.
      {{"out", kGemm}, {"lse", kGemm}, {"dq", kAttentionGrad}, {"dk", kAttentionGrad}, {"dv", kAttentionGrad}});
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
