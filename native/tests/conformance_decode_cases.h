// The inference conformance cases (kernels/paged_attention.cu against native/ops/paged_attention.h):
// the KV-cache write and the attention of new tokens over paged keys, with shared prompt blocks (the
// n samples of one prompt), partly filled last blocks, a prefill chunk next to decode rows, and GQA.
// Included by cuda_conformance.cu inside its namespace, after run_case and the tolerances.
//
// Tolerances: the cache write is a copy (exact; a bf16 cache's rounding is the CPU's conversion, so
// exact too); the attention is a softmax-weighted sum, online on the GPU and two-pass on the CPU, so
// GEMM-like rounding (kGemm). The bf16 cases compare with the CPU's bf16 entries (same cached bits).
#pragma once

// Sequences of the given key counts; sequence pairs (0, 1), (2, 3), ... share their first `shared`
// keys' blocks as sampling forks share a prompt. Sequence s gets new_tokens[s] query rows at its last
// positions (1 = decode; more = a prefill chunk), written into the cache before the attention. The new
// rows of a sequence that shares blocks must lie past the shared ones: kv_cache_write's slots must be
// distinct (two tokens writing one slot race on the GPU). bf16: the cache holds bf16 (a bf16 compute
// copy's generation).
void paged_attention_case(Context& ctx, const char* what, const std::vector<int64_t>& keys, int64_t shared,
                          const std::vector<int64_t>& new_tokens, int64_t heads, int64_t kv_heads, int64_t head_dim,
                          int64_t block_size, bool bf16_cache = false) {
  Rng rng(32);
  MEDIX_CHECK(new_tokens.size() == keys.size(), "paged_attention_case: one new-token count per sequence");
  const int64_t n_seqs = static_cast<int64_t>(keys.size()), kv_dim = kv_heads * head_dim;
  int64_t max_blocks = 0;
  for (const int64_t n : keys) max_blocks = std::max(max_blocks, (n + block_size - 1) / block_size);
  // Block tables: fresh blocks for each sequence, except the shared prefix's full blocks of odd ones.
  const int64_t shared_blocks = shared / block_size;
  std::vector<int32_t> tables(n_seqs * max_blocks, 0);
  int32_t next = 0;
  for (int64_t s = 0; s < n_seqs; ++s)
    for (int64_t b = 0; b < (keys[s] + block_size - 1) / block_size; ++b)
      tables[s * max_blocks + b] = s % 2 == 1 && b < shared_blocks ? tables[(s - 1) * max_blocks + b] : next++;
  const int64_t n_slots = static_cast<int64_t>(next) * block_size;
  // The new tokens: the last new_tokens positions of each sequence, causal among themselves.
  std::vector<int32_t> slots, seq_of_token, n_keys;
  for (int64_t s = 0; s < n_seqs; ++s) {
    MEDIX_CHECK(new_tokens[s] >= 1 && new_tokens[s] <= keys[s], "paged_attention_case: bad new-token count");
    MEDIX_CHECK(s % 2 == 0 || keys[s] - new_tokens[s] >= shared_blocks * block_size, "paged_attention_case: sequence ",
                s, " would write into a shared block");
  }
  for (int64_t s = 0; s < n_seqs; ++s)
    for (int64_t i = keys[s] - new_tokens[s]; i < keys[s]; ++i) {
      slots.push_back(tables[s * max_blocks + i / block_size] * static_cast<int32_t>(block_size) +
                      static_cast<int32_t>(i % block_size));
      seq_of_token.push_back(static_cast<int32_t>(s));
      n_keys.push_back(static_cast<int32_t>(i + 1));
    }
  const int64_t T = static_cast<int64_t>(slots.size());
  const std::vector<float> k_cache0 = random_floats(rng, n_slots * kv_dim, -2, 2);
  const std::vector<float> v_cache0 = random_floats(rng, n_slots * kv_dim, -1, 1);
  const std::vector<float> q = random_floats(rng, T * heads * head_dim, -2, 2);
  const std::vector<float> k = random_floats(rng, T * kv_dim, -2, 2), v = random_floats(rng, T * kv_dim, -1, 1);
  PagedAttentionShape s;
  s.T = T;
  s.n_heads = heads;
  s.n_kv_heads = kv_heads;
  s.head_dim = head_dim;
  s.block_size = block_size;
  s.max_blocks = max_blocks;
  s.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  // A bf16 cache starts as the rounded random cache; both sides write and read bf16 bits.
  const std::vector<uint16_t> k_bits0 = bf16_cache ? to_bf16(k_cache0) : std::vector<uint16_t>{};
  const std::vector<uint16_t> v_bits0 = bf16_cache ? to_bf16(v_cache0) : std::vector<uint16_t>{};
  run_case(
      ctx, bf16_cache ? "paged_attention_bf16" : "paged_attention",
      std::string(what) + " " +
          to_string_shape({{"seqs", n_seqs},
                           {"new", *std::max_element(new_tokens.begin(), new_tokens.end())},
                           {"keys", keys.back()},
                           {"heads", heads},
                           {"kv_heads", kv_heads},
                           {"head_dim", head_dim},
                           {"block", block_size}}),
      [&] {
        std::vector<float> k_cache = k_cache0, v_cache = v_cache0, out(T * heads * head_dim);
        PagedAttentionShape h = s;
        h.block_tables = tables.data();
        h.seq_of_token = seq_of_token.data();
        h.n_keys = n_keys.data();
        if (bf16_cache) {
          std::vector<uint16_t> kb = k_bits0, vb = v_bits0;
          cpu::kv_cache_write_bf16(kb.data(), vb.data(), k.data(), v.data(), slots.data(), T, kv_dim);
          cpu::paged_attention_forward_bf16(out.data(), q.data(), kb.data(), vb.data(), h);
          return Outputs{{"k_cache", from_bf16(kb)}, {"v_cache", from_bf16(vb)}, {"out", std::move(out)}};
        }
        cpu::kv_cache_write(k_cache.data(), v_cache.data(), k.data(), v.data(), slots.data(), T, kv_dim);
        cpu::paged_attention_forward(out.data(), q.data(), k_cache.data(), v_cache.data(), h);
        return Outputs{{"k_cache", std::move(k_cache)}, {"v_cache", std::move(v_cache)}, {"out", std::move(out)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<int32_t> d_tables(tables), d_seq(seq_of_token), d_n(n_keys), d_slots(slots);
        DeviceBuffer<float> d_k_cache(k_cache0), d_v_cache(v_cache0), d_q(q), d_k(k), d_v(v);
        DeviceBuffer<float> d_out(T * heads * head_dim);
        PagedAttentionShape d = s;
        d.block_tables = d_tables.get();
        d.seq_of_token = d_seq.get();
        d.n_keys = d_n.get();
        if (bf16_cache) {
          DeviceBuffer<uint16_t> d_kb(k_bits0), d_vb(v_bits0);
          timer.start();
          cuda::kv_cache_write(as_bf16(d_kb), as_bf16(d_vb), d_k.get(), d_v.get(), d_slots.get(), T, kv_dim);
          cuda::paged_attention_forward(d_out.get(), d_q.get(), as_bf16(d_kb), as_bf16(d_vb), d);
          timer.stop();
          return Outputs{
              {"k_cache", from_bf16(d_kb.to_host())}, {"v_cache", from_bf16(d_vb.to_host())}, {"out", d_out.to_host()}};
        }
        timer.start();
        cuda::kv_cache_write(d_k_cache.get(), d_v_cache.get(), d_k.get(), d_v.get(), d_slots.get(), T, kv_dim);
        cuda::paged_attention_forward(d_out.get(), d_q.get(), d_k_cache.get(), d_v_cache.get(), d);
        timer.stop();
        return Outputs{{"k_cache", d_k_cache.to_host()}, {"v_cache", d_v_cache.to_host()}, {"out", d_out.to_host()}};
      },
      {{"k_cache", kExact}, {"v_cache", kExact}, {"out", kGemm}});
}

void decode_cases(Context& ctx, bool big) {
  for (const bool bf16_cache : {false, true}) {
    if (!wanted(ctx, bf16_cache ? "paged_attention_bf16" : "paged_attention")) continue;
    // Tiny: odd head_dim (lanes partly idle), a partly filled last block, shared prompt blocks.
    paged_attention_case(ctx, "decode", {9, 11, 5}, 8, {1, 1, 1}, 4, 2, 20, 4, bf16_cache);
    paged_attention_case(ctx, "prefill chunk", {13, 13}, 8, {5, 5}, 3, 1, 16, 4, bf16_cache);
    // A prefill chunk batched with decode rows, and a head_dim past 128 that is no multiple of 32 (a
    // lane's 5th to 7th values, the 7th only on some lanes): what Qwen3's 128 never reaches.
    paged_attention_case(ctx, "prefill + decode", {10, 9, 6}, 4, {6, 1, 1}, 4, 2, 200, 4, bf16_cache);
    if (big) {
      // Qwen3-1.7B-like decode at batch 32 over 2k keys (16 query / 8 kv heads of 128), samples sharing
      // a 1,024-token prompt; and a 512-token prefill chunk.
      paged_attention_case(ctx, "decode", std::vector<int64_t>(32, 2048), 1024, std::vector<int64_t>(32, 1), 16, 8, 128,
                           16, bf16_cache);
      paged_attention_case(ctx, "prefill chunk", {1536}, 0, {512}, 16, 8, 128, 16, bf16_cache);
    }
  }
}
