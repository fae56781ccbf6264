// Causal grouped-query attention over packed variable-length sequences.
//
// Sequences are packed back to back: sequence s holds tokens [cu_seqlens[s], cu_seqlens[s+1]).
// A query attends to keys of its own sequence at positions <= its own (causal), or to every key of its
// own sequence when causal is false (the vision tower: one image is one sequence); nothing is padded.
// q: [T, n_heads, head_dim]; k, v: [T, n_kv_heads, head_dim]; query head h reads kv head
// h / (n_heads / n_kv_heads). out: [T, n_heads, head_dim]. lse: [T, n_heads] = log-sum-exp of the
// scaled scores of each query row, saved so backward can recompute probabilities without storing them.
#pragma once
#include <cstdint>
#include "../core/backend_op.h"

namespace medix {

struct AttentionShape {
  int64_t T = 0;
  int64_t n_heads = 0, n_kv_heads = 0, head_dim = 0;
  const int32_t* cu_seqlens = nullptr;  // [n_seqs + 1], cu_seqlens[0] = 0, cu_seqlens[n_seqs] = T
  int64_t n_seqs = 0;
  float scale = 0.0f;  // usually 1/sqrt(head_dim)
  bool causal = true;  // false: bidirectional within each sequence, still nothing across sequences
  // The same n_seqs + 1 values in host memory, when the caller has them (the model does): a backend
  // that needs them on the host (the CUDA one validates and schedules with them) then skips a copy
  // and its synchronisation. Null: the backend copies cu_seqlens itself.
  const int32_t* cu_seqlens_host = nullptr;
  // The model's bf16 compute: a backend may round q, k, v, dout and the probabilities (and dS) to bf16
  // as operands of the matrix products, accumulating in fp32, as flash attention in bf16 does (the CUDA
  // backend's tensor-core kernels). Statistics (lse, the softmax sums, delta) stay fp32. The CPU
  // computes in fp32 either way: it is the reference the rounded path is held to.
  bool bf16_operands = false;
};

namespace cpu {

void attention_forward(float* out, float* lse, const float* q, const float* k, const float* v, const AttentionShape& s);
// dq += ..., dk += ..., dv += ...
void attention_backward(float* dq, float* dk, float* dv, const float* dout, const float* out, const float* lse,
                        const float* q, const float* k, const float* v, const AttentionShape& s);

}  // namespace cpu

// The pointers in an AttentionShape, for the device-memory guard (core/backend_op.h).
inline void visit_memory(MemoryArgs& m, const AttentionShape& s) {
  m.push_back({"s.cu_seqlens", s.cu_seqlens, false});
  m.push_back({"s.cu_seqlens_host", s.cu_seqlens_host, true});
}

// Backend ops (core/backend_op.h): be.run<Op>(...) with the arguments of the reference functions above.
struct AttentionForward : BackendOp<AttentionForward, decltype(cpu::attention_forward)> {
  static constexpr const char* name = "attention_forward";
  static constexpr OpKind kind = OpKind::Attention;
  static constexpr OpArg args[] = {{"out"}, {"lse"}, {"q"}, {"k"}, {"v"}, {"s"}};
};
struct AttentionBackward : BackendOp<AttentionBackward, decltype(cpu::attention_backward)> {
  static constexpr const char* name = "attention_backward";
  static constexpr OpKind kind = OpKind::Attention;
  static constexpr OpArg args[] = {{"dq"}, {"dk"}, {"dv"}, {"dout"}, {"out"}, {"lse"}, {"q"}, {"k"}, {"v"}, {"s"}};
};

}  // namespace medix
