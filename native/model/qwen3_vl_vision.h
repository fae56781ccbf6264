// The Qwen3-VL vision tower, forward and backward on any backend: patch embedding (a linear map over the
// C*T*P*P values of a patch, with bias), plus the interpolated position table; pre-LN blocks (LayerNorm,
// qkv with bias, 2D rotary, attention within each image frame, GELU-tanh MLP); the patch merger (LN,
// 2x2 patches -> 1 token, MLP with exact GELU) and the deepstack mergers (LN after the 2x2 shuffle) on
// the outputs of the blocks listed in deepstack_indexes. Names follow Hugging Face's model.visual.*.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "../ops/attention.h"
#include "../ops/gelu.h"
#include "../ops/vision_grid.h"

namespace medix {

struct VisionConfig {
  int64_t depth = 0, hidden = 0, heads = 0, intermediate = 0, out_hidden = 0;
  int64_t in_channels = 3, temporal_patch = 2, patch = 16;  // a patch is in_channels x temporal x patch x patch
  int64_t merge = 2;                                        // spatial_merge_size
  int64_t side = 0;                                         // sqrt(num_position_embeddings)
  std::vector<int64_t> deepstack_indexes;
  float theta = 10000.0f;
  float eps = 1e-6f;
  int64_t head_dim() const { return hidden / heads; }
  int64_t merged_dim() const { return hidden * merge * merge; }
  int64_t patch_inputs() const { return in_channels * temporal_patch * patch * patch; }
};

// The tower's parameters in a fixed order, named as in Hugging Face without the "model.visual." prefix.
struct VisionParam {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel() const;
};
std::vector<VisionParam> vision_parameters(const VisionConfig& cfg);
// Throws std::invalid_argument naming the field when the configuration cannot describe a tower.
void check_vision_config(const VisionConfig& cfg);

// One forward pass with everything backward needs, run through a Backend: parameters, gradients,
// the outputs and every activation are that backend's memory (device memory on CUDA); only the pixels
// and the grids come from the host. `params` and `grads` are in vision_parameters order.
// With recompute, each block keeps only its input after the forward and recomputes the rest in backward
// (the same ops on the same input: gradients are bit-identical).
class VisionTower {
 public:
  // for_backward false (generation's prefill, forwards without training, a frozen tower): every activation
  // is released as soon as the next op has read it; only merged() and deepstack(k) stay, and backward()
  // refuses.
  // bf16: in the model's bf16 compute, the bf16 copy of a weight (by the f32 weight's address, as the
  // model's compute copy finds it). The tower's linear layers then read it, as the decoder's do, and its
  // attention may round its operands (AttentionShape::bf16_operands). Null: f32 throughout.
  using Bf16Copy = std::function<const uint16_t*(const float*)>;
  VisionTower(Backend& be, VisionConfig cfg, bool recompute = false, bool for_backward = true, Bf16Copy bf16 = nullptr);
  // Bytes a forward of `patches` patches holds at its peak: for backward, plus the backward's peak (the
  // recomputed block and the gradient scratch), when training; one block's otherwise.
  static size_t activation_bytes(const VisionConfig& cfg, int64_t patches, bool training, bool recompute);
  // pixels (host): [N, patch_inputs], N = sum t*h*w. Outputs: merged() [N/merge^2, out_hidden], deepstack(k).
  void forward(const std::vector<const float*>& params, const float* pixels, const std::vector<ImageGrid>& grids);
  // grads += d(loss)/d(params) given d(loss)/d(merged) and d(loss)/d(deepstack k) (entries may be null).
  void backward(const std::vector<float*>& grads, const float* d_merged, const std::vector<const float*>& d_deepstack);

  int64_t patches() const { return N_; }
  int64_t tokens() const { return N_ / (cfg_.merge * cfg_.merge); }
  // Backend memory: [tokens, out_hidden] for the mergers, [patches, hidden] for the others. A block's
  // output is kept only without recompute, and (like the patch embedding) only for backward.
  const float* merged() const { return merger_.out.get(); }
  const float* deepstack(size_t k) const { return deepstack_[k].out.get(); }
  const float* patch_embed() const { return patch_out_.get(); }
  const float* block_output(size_t i) const { return blocks_[i].out.get(); }

 private:
  using Buf = BackendArray<float>;
  struct BlockActs {
    Buf in, ln1, mean1, rstd1, q, k, v, attn, lse, mid, ln2, mean2, rstd2, fc1, act, out;
  };
  struct MergerActs {
    Buf in, ln, mean, rstd, fc1, act, out;
  };
  const float* p(size_t i) const { return params_[i]; }
  // Backward's gradients, which its ops accumulate into.
  Buf zeros(int64_t n) const { return Buf(be_, n); }
  // Forward's activations: each op writes all of its output, so no fill (a pass over the memory on a GPU).
  Buf written(int64_t n) const { return Buf::uninit(be_, n); }
  Buf copy_of(const float* x, int64_t n) const;
  AttentionShape attention_shape() const;
  // The backend's linear ops on W, or on its bf16 copy in bf16 compute.
  void linear(float* y, const float* x, const float* W, const float* b, int64_t T, int64_t in, int64_t out) const;
  void linear_back(float* dx, float* dW, float* db, const float* dy, const float* x, const float* W, int64_t T,
                   int64_t in, int64_t out) const;
  void block_forward(size_t i, const float* x);
  void release_block(size_t i, bool keep_input);
  void block_backward(size_t i, Buf& dx, const std::vector<float*>& g);
  void merger_forward(MergerActs& a, size_t first, bool postshuffle, const float* x);
  void merger_backward(MergerActs& a, size_t first, bool postshuffle, const float* dout, float* dx,
                       const std::vector<float*>& g);

  Backend& be_;
  VisionConfig cfg_;
  bool recompute_ = false;
  bool for_backward_ = true;
  Bf16Copy bf16_;
  std::vector<const float*> params_;
  Buf pixels_;  // a copy: backward needs them after the caller's buffer is gone
  std::vector<ImageGrid> grids_;
  std::vector<int32_t> cu_;                // host copy of cu_dev_ (the attention schedules with it)
  BackendArray<int32_t> coords_, cu_dev_;  // [N, 2] patch (row, column); [frames + 1] offsets
  int64_t N_ = 0;
  Buf patch_out_, embedded_;
  std::vector<BlockActs> blocks_;
  MergerActs merger_;
  std::vector<MergerActs> deepstack_;
};

}  // namespace medix
