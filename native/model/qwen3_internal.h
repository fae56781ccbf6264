// Definitions private to the Qwen3 model's source files (qwen3.cc: training forward/backward;
// qwen3_decode.cc: inference with a KV cache), which share the layer views and activation buffers.
#pragma once
#include <vector>

#include "qwen3.h"

namespace medix {

// Pointers to one layer's tensors inside a flat buffer (weights or gradients: same layout). On a
// sparse layer gate, up, down are mlp.gate (the router [E,H]), mlp.experts.gate_up_proj [E,2I,H]
// and mlp.experts.down_proj [E,H,I].
struct Qwen3Model::Layer {
  float *in_norm, *q, *k, *v, *o, *q_norm, *k_norm, *post_norm, *gate, *up, *down;
};

// One layer's activations. With training && !recompute there is one Acts per layer; otherwise a
// single Acts is reused by every layer (and refilled by recomputation in backward).
struct Qwen3Model::Acts {
  float *rstd1, *xn1, *q_pre, *q_rstd, *q, *k_pre, *k_rstd, *k, *v, *attn, *lse, *h_mid, *rstd2, *xn2, *gate, *up, *act;
  // Sparse layers (null in a dense model): router logits and probabilities [T,E], top-K weights
  // [T,K], expert projections [T*K,I] and unweighted outputs [T*K,H] in expert order, and the
  // backward's scratch for the weights' and logits' gradients.
  float *router_logits, *probs, *route_w, *moe_gate, *moe_up, *moe_y, *moe_dw, *moe_dlogits;
  int32_t *route_experts, *route_order, *route_offsets;
};

// Backend buffers freed together: the owner of a workspace allocates through f()/i().
struct BufferArena {
  Backend& be;
  std::vector<void*> blocks;
  size_t bytes = 0;  // floats allocated, in bytes

  explicit BufferArena(Backend& b) : be(b) {}
  ~BufferArena();
  BufferArena(const BufferArena&) = delete;
  BufferArena& operator=(const BufferArena&) = delete;
  float* f(int64_t n);    // n floats, zeroed
  int32_t* i(int64_t n);  // n int32s, zeroed
};

// forward_cached's buffers for up to `capacity` tokens: the residual stream in and out of a layer
// and one layer's activations (reused by every layer: nothing is kept for backward).
struct Qwen3Model::DecodeWorkspace : BufferArena {
  int64_t capacity = 0;
  float *x0, *x1, *tmp;
  Acts acts;
  float *final_xn, *final_rstd, *rows;
  int32_t *tokens, *positions, *slots, *seq_of_token, *n_keys;
  // Host-side step layout and the block tables (whose width changes with the longest sequence),
  // kept so that a step allocates nothing once they have grown.
  std::vector<int32_t> host_slots, host_seq_of_token, host_n_keys, host_positions, host_tables;
  GrowableBuffer tables;

  explicit DecodeWorkspace(Backend& b) : BufferArena(b), tables(b) {}
};

}  // namespace medix
