// The Qwen3 model's compute dtype (qwen3.h, set_compute_dtype): the decoder's linear layers (and the
// vision tower's, through run_tower) read either the f32 master weights or a bf16 copy of them. The copy is made
// lazily, at the first product after the weights changed, so a training step (forward, backward, optimizer step)
// converts the weights once, and a string of set_param calls (loading a checkpoint) converts them once too.
#include "qwen3.h"

#include "../core/error.h"
#include "linear_dtype.h"
#include "qwen3_full_shard.h"

namespace medix {

void Qwen3Model::set_compute_dtype(ComputeDType d) {
  if (fsdp_ && d != dtype_) {
    // Fully sharded, the dtype decides what gathers bring (qwen3_fsdp.cc): units in place now were
    // gathered in the other one, so they are given back and come again in this one.
    MEDIX_CHECK(!fsdp_->pinned,
                "set_compute_dtype: the whole weights are gathered (gatherWeights); release them first");
    for (int64_t u = 0; u < static_cast<int64_t>(fsdp_->units.size()); ++u) unit_release(u);
  }
  dtype_ = d;
  if (d == ComputeDType::f32 && compute_) {
    be_.release(compute_);
    compute_ = nullptr;
  }
  compute_stale_ = true;
  have_training_forward_ = false;  // activations saved by the other dtype's forward must not be reused
}

// Fully sharded, W's unit was gathered in bf16 into the bf16 layout (unit_gather), which is the copy.
const uint16_t* Qwen3Model::compute_copy(const float* W) {
  if (fsdp_) return fsdp_->compute_bits() + (W - weights_);
  if (compute_stale_) {
    if (!compute_) compute_ = static_cast<uint16_t*>(be_.alloc(sizeof(uint16_t) * n_params_));
    be_.run<ToBf16>(compute_, weights_, n_params_);
    compute_stale_ = false;
  }
  return compute_ + (W - weights_);
}

void Qwen3Model::linear(float* y, const float* x, const float* W, int64_t T, int64_t in, int64_t out) {
  linear_forward_as(be_, y, x, W, dtype_ == ComputeDType::bf16 ? compute_copy(W) : nullptr, nullptr, T, in, out);
}

void Qwen3Model::linear_back(float* dx, float* dW, const float* dy, const float* x, const float* W, int64_t T,
                             int64_t in, int64_t out) {
  linear_backward_as(be_, dx, dW, nullptr, dy, x, W, dtype_ == ComputeDType::bf16 ? compute_copy(W) : nullptr, T, in,
                     out);
}

}  // namespace medix
