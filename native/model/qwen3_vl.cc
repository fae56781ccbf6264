// The Qwen3-VL parts of Qwen3Model: the vision tower runs on the batch's images, its merged outputs
// replace the embeddings of the image tokens (in order), and its deepstack outputs are added to the
// hidden states at the same tokens after the first decoder layers (one output per layer). Backward
// collects the gradients at those rows and runs the tower's backward into the "model.visual."
// gradients, unless the tower is frozen. The image tokens' embedding rows get no gradient, as in
// Hugging Face, where the image features overwrite them.
#include <memory>
#include <stdexcept>

#include "../core/error.h"
#include "../ops/residual.h"
#include "qwen3.h"

namespace medix {

void Qwen3Config::validate_vision() const {
  try {
    check_vision_config(*vision);
  } catch (const std::invalid_argument& e) {
    fail("Qwen3-VL config: ", e.what());
  }
  MEDIX_CHECK(vision->out_hidden == hidden, "Qwen3-VL config: vision_config.out_hidden_size (", vision->out_hidden,
              ") must equal text_config.hidden_size (", hidden, ")");
  // An id past the vocabulary (a text-only checkpoint with a cut vocabulary) leaves images unusable;
  // forward refuses images then.
  MEDIX_CHECK(image_token_id >= 0, "Qwen3-VL config: image_token_id must be >= 0, got ", image_token_id);
  MEDIX_CHECK(static_cast<int64_t>(vision->deepstack_indexes.size()) <= layers,
              "Qwen3-VL config: more deepstack_visual_indexes (", vision->deepstack_indexes.size(),
              ") than text layers (", layers, ")");
}

std::unique_ptr<VisionTower> Qwen3Model::run_tower(const float* pixels, const ImageGrid* grids, int64_t n_images,
                                                   int64_t image_tokens, const char* fn, bool for_backward) {
  MEDIX_CHECK(cfg_.vision, fn, ": the batch has images but the model has no vision tower");
  MEDIX_CHECK(cfg_.image_token_id < cfg_.vocab, fn, ": the batch has images but image_token_id (", cfg_.image_token_id,
              ") is not in the vocabulary (", cfg_.vocab, ")");
  const std::vector<VisionParam> vp = vision_parameters(*cfg_.vision);
  std::vector<const float*> w;
  for (size_t i = 0; i < vp.size(); ++i) w.push_back(weights_ + params_[vision_first_ + i].offset);
  VisionTower::Bf16Copy bf16;
  if (dtype_ == ComputeDType::bf16) bf16 = [this](const float* W) { return compute_copy(W); };
  auto tower = std::make_unique<VisionTower>(be_, *cfg_.vision, recompute_, for_backward, std::move(bf16));
  tower->forward(w, pixels, std::vector<ImageGrid>(grids, grids + n_images));
  MEDIX_CHECK(image_tokens == tower->tokens(), fn, ": the batch has ", image_tokens,
              " image tokens but its images give ", tower->tokens(), " (one per merge block of each grid)");
  return tower;
}

namespace {

// Runs of consecutive rows (an image's tokens are consecutive in its sequence): k-th run is rows
// [first, first + count) of the stream and rows [at, at + count) of the tower's outputs. One copy or
// add per run instead of one per row.
struct RowRun {
  int64_t first, at, count;
};

std::vector<RowRun> row_runs(const std::vector<int32_t>& rows) {
  std::vector<RowRun> runs;
  for (size_t k = 0; k < rows.size(); ++k) {
    if (!runs.empty() && rows[k] == runs.back().first + runs.back().count)
      ++runs.back().count;
    else
      runs.push_back({rows[k], static_cast<int64_t>(k), 1});
  }
  return runs;
}

}  // namespace

void Qwen3Model::place_visual(const VisionTower& tower, const std::vector<int32_t>& rows, float* stream) {
  const int64_t H = cfg_.hidden;
  for (const RowRun& r : row_runs(rows)) be_.copy(stream + r.first * H, tower.merged() + r.at * H, r.count * H);
}

void Qwen3Model::add_deepstack(const VisionTower& tower, const std::vector<int32_t>& rows, int64_t l, float* stream) {
  if (l >= static_cast<int64_t>(cfg_.vision->deepstack_indexes.size())) return;
  const int64_t H = cfg_.hidden;
  const float* add = tower.deepstack(static_cast<size_t>(l));
  for (const RowRun& r : row_runs(rows)) be_.run<AddInplace>(stream + r.first * H, add + r.at * H, r.count * H);
}

// out[k] = stream row rows[k] (the gradients at the image tokens, in the tower's output order).
void Qwen3Model::gather_visual_rows(float* out, const float* stream) const {
  const int64_t H = cfg_.hidden;
  for (const RowRun& r : row_runs(visual_rows_)) be_.copy(out + r.at * H, stream + r.first * H, r.count * H);
}

void Qwen3Model::visual_forward(const PackedBatch& b, float* stream0, bool training) {
  visual_rows_.clear();
  d_deepstack_.clear();
  const int64_t T = static_cast<int64_t>(tokens_.size());
  if (cfg_.vision)
    for (int64_t t = 0; t < T; ++t)
      if (tokens_[t] == cfg_.image_token_id) visual_rows_.push_back(static_cast<int32_t>(t));
  if (b.n_images == 0) {
    MEDIX_CHECK(visual_rows_.empty(), "forward: the batch has ", visual_rows_.size(), " image tokens but no images");
    return;
  }
  tower_ = run_tower(b.pixels, b.grids, b.n_images, static_cast<int64_t>(visual_rows_.size()), "forward",
                     tower_for_backward(training));
  place_visual(*tower_, visual_rows_, stream0);
  d_deepstack_.resize(cfg_.vision->deepstack_indexes.size());
}

void Qwen3Model::deepstack_forward(int64_t l, float* stream) {
  if (tower_) add_deepstack(*tower_, visual_rows_, l, stream);
}

void Qwen3Model::deepstack_backward(int64_t l, const float* dh) {
  if (!tower_ || l >= static_cast<int64_t>(d_deepstack_.size())) return;
  d_deepstack_[l] = BackendArray<float>(be_, static_cast<int64_t>(visual_rows_.size()) * cfg_.hidden);
  gather_visual_rows(d_deepstack_[l].get(), dh);
}

void Qwen3Model::visual_backward(float* dh) {
  if (!tower_) return;
  const int64_t H = cfg_.hidden;
  BackendArray<float> d_merged(be_, static_cast<int64_t>(visual_rows_.size()) * H);
  gather_visual_rows(d_merged.get(), dh);
  for (const RowRun& r : row_runs(visual_rows_)) be_.zero(dh + r.first * H, r.count * H);
  if (vision_frozen_) return;
  std::vector<float*> g;
  for (size_t i = vision_first_; i < vision_first_ + vision_parameters(*cfg_.vision).size(); ++i)
    g.push_back(grads_ + params_[i].offset);
  std::vector<const float*> dd;
  for (const auto& d : d_deepstack_) dd.push_back(d.get());
  tower_->backward(g, d_merged.get(), dd);
}

}  // namespace medix
