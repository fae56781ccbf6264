// Full sharding (FSDP full shard) of the Qwen3 model over a Communicator: see set_full_shard in
// qwen3.h. The whole layout keeps its address space (Backend::reserve), so every kernel still finds a
// tensor at weights_ + offset; only the units being computed are backed by memory. The shards, the
// collectives' buffers and every update live in backend memory, so one code serves the CPU (MPI) and a
// GPU (NCCL).
#include <algorithm>
#include <string>
#include <vector>

#include "../core/bf16.h"
#include "../core/error.h"
#include "../ops/adamw.h"
#include "../ops/residual.h"
#include "qwen3_full_shard.h"

namespace medix {

void Qwen3Model::set_full_shard(Communicator& comm, Communicator& scalars) {
  MEDIX_CHECK(!adam_m_, "set_full_shard: the optimizer state already exists; call it before the first step");
  MEDIX_CHECK(!comm_ && !fsdp_, "set_full_shard: the model is already data parallel or fully sharded");
  MEDIX_CHECK(scalars.size() == comm.size() && scalars.rank() == comm.rank(), "set_full_shard: the ", scalars.name(),
              " communicator (rank ", scalars.rank(), " of ", scalars.size(), ") is not over the ", comm.name(),
              " communicator's ranks (rank ", comm.rank(), " of ", comm.size(), ")");
  std::vector<int64_t> numels;
  std::vector<std::string> keys;
  for (const auto& p : params_) {
    numels.push_back(p.numel);
    keys.push_back(unit_key(p.name));
  }
  auto fs = std::make_unique<FullShard>(be_, comm, scalars, flat_units(numels, keys, comm.size()), n_params_);
  // The layout's order gives the units: embedding, layers, final norm, [tower], [head].
  MEDIX_CHECK(static_cast<int64_t>(fs->units.size()) >= 2 + cfg_.layers && fs->units[0].end_tensor == 1 &&
                  static_cast<size_t>(fs->units[norm_unit()].first_tensor) == final_norm_tensor(),
              "set_full_shard: the parameters do not split into embedding, layers and norm units");
  // This rank's shard of every unit, from the whole weights it has now (the padding stays zero).
  std::vector<float> host(n_params_), mine(fs->slice_floats, 0.0f);
  be_.to_host(host.data(), weights_, sizeof(float) * n_params_);
  fs->each_owned_part(params_, [&](int64_t, int64_t lo, int64_t hi, int64_t at) {
    std::copy(host.begin() + lo, host.begin() + hi, mine.begin() + at);
  });
  be_.from_host(fs->w.get(), mine.data(), sizeof(float) * mine.size());
  have_training_forward_ = false;  // a new forward must save what backward reads from the new buffers
  // A bf16 copy of the whole model is given back: from now on the gathers bring each unit's.
  if (compute_) {
    be_.release(compute_);
    compute_ = nullptr;
  }
  be_.release(weights_);
  if (grads_) be_.release(grads_);
  weights_ = fs->weight_data();
  grads_ = fs->grad_data();
  rank_ = comm.rank();
  fsdp_ = std::move(fs);
}

void Qwen3Model::set_owned_weights(const ParamInfo& p, const float* host) {
  release_unit_weights();  // no gather may still read the shards, and none may keep old values in place
  FullShard& fs = *fsdp_;
  const int64_t t = &p - params_.data();
  fs.each_owned_part(params_, [&](int64_t part, int64_t lo, int64_t hi, int64_t at) {
    if (part == t) be_.from_host(fs.w.get() + at, host + (lo - p.offset), sizeof(float) * (hi - lo));
  });
}

int64_t Qwen3Model::optimizer_floats() const { return fsdp_ ? fsdp_->slice_floats : owned().numel; }

std::vector<Qwen3Model::OwnedPart> Qwen3Model::full_shard_parts() const {
  MEDIX_CHECK(fsdp_, "full_shard_parts: the model is not fully sharded");
  std::vector<OwnedPart> parts;
  fsdp_->each_owned_part(params_, [&](int64_t t, int64_t lo, int64_t hi, int64_t at) {
    parts.push_back(OwnedPart{t, lo - params_[t].offset, hi - lo, at});
  });
  return parts;
}

void Qwen3Model::get_full_shard_weights(float* host) const {
  MEDIX_CHECK(fsdp_, "get_full_shard_weights: the model is not fully sharded");
  be_.to_host(host, fsdp_->w.get(), sizeof(float) * fsdp_->slice_floats);
}

void Qwen3Model::require_whole_weights(const char* what) const {
  MEDIX_CHECK(!fsdp_ || fsdp_->pinned, what, ": the model is fully sharded; gather its weights first (gatherWeights)");
}

int64_t Qwen3Model::head_unit() const {
  return cfg_.tie_embeddings ? 0 : static_cast<int64_t>(fsdp_ ? fsdp_->units.size() - 1 : 0);
}

// With bf16 compute the unit travels in bf16, half the bytes, as FSDP's bf16 mixed precision gathers
// it: each rank rounds its shard of the master weights, the gather places the unit in the bf16 layout
// the linear layers and the experts read, and the f32 layout gets the same values widened for the ops
// that read f32 (embedding, norms, head). So every op sees the bf16-rounded weights; one process
// computing in bf16 without sharding rounds only the copy the linear layers and experts read.
//
// A gather is started (by unit_prefetch: the next unit while the current one computes, where the engine
// runs gathers beside compute) and finished before the unit is read (unit_gather), one at a time.
void Qwen3Model::unit_start_gather(int64_t u) {
  if (!fsdp_ || fsdp_->gathered[u]) return;
  FullShard& fs = *fsdp_;
  if (fs.pending >= 0) finish_gather();
  const FlatUnit& unit = fs.units[u];
  const bool bf16 = dtype_ == ComputeDType::bf16;
  fs.acquire(*fs.weights, unit, sizeof(float), false);
  bool compute = false;
  try {  // a failure below (out of memory) leaves nothing acquired
    if (bf16) {
      fs.acquire(*fs.compute, unit, sizeof(uint16_t), false);
      compute = true;
      fs.pending_shard = BackendArray<uint16_t>::uninit(be_, unit.shard);  // to_bf16 writes it all
      be_.run<ToBf16>(fs.pending_shard.get(), fs.w.get() + unit.slice_offset, unit.shard);
      fs.comm.start_gather(be_, fs.pending_shard.get(), fs.compute_bits() + unit.offset, unit.shard, unit.numel,
                           DType::BF16);
    } else {
      fs.comm.start_gather(be_, fs.w.get() + unit.slice_offset, fs.weight_data() + unit.offset, unit.shard, unit.numel,
                           DType::F32);
    }
  } catch (...) {
    fs.pending_shard.reset();
    if (compute) fs.release(*fs.compute, unit, sizeof(uint16_t), false);
    fs.release(*fs.weights, unit, sizeof(float), false);
    throw;
  }
  fs.gathered[u] = true;
  fs.pending = u;
  fs.allgathered += static_cast<int64_t>(bf16 ? 2 : 4) * unit.shard * fs.ranks;
  fs.sample();
}

void Qwen3Model::finish_gather() {
  FullShard& fs = *fsdp_;
  const FlatUnit& unit = fs.units[fs.pending];
  fs.comm.finish_gather();
  if (dtype_ == ComputeDType::bf16) {
    be_.run<FromBf16>(fs.weight_data() + unit.offset, fs.compute_bits() + unit.offset, unit.numel);
    fs.pending_shard.reset();
  }
  fs.pending = -1;
}

// Only where the gather can overlap compute (NCCL): elsewhere it would hold a second unit in place for
// nothing.
void Qwen3Model::unit_prefetch(int64_t u) {
  if (fsdp_ && fsdp_->comm.gathers_async()) unit_start_gather(u);
}

void Qwen3Model::unit_gather(int64_t u) {
  if (!fsdp_) return;
  unit_start_gather(u);
  if (fsdp_->pending == u) finish_gather();
}

void Qwen3Model::unit_release(int64_t u) {
  if (!fsdp_ || fsdp_->pinned || !fsdp_->gathered[u]) return;
  FullShard& fs = *fsdp_;
  if (fs.pending == u) finish_gather();  // started but not read (a forward that stopped early)
  fs.release(*fs.weights, fs.units[u], sizeof(float), false);
  if (dtype_ == ComputeDType::bf16) fs.release(*fs.compute, fs.units[u], sizeof(uint16_t), false);
  fs.gathered[u] = false;
}

void Qwen3Model::unit_grads(int64_t u) {
  if (!fsdp_ || fsdp_->grads_live[u]) return;
  FullShard& fs = *fsdp_;
  fs.acquire(*fs.grads, fs.units[u], sizeof(float), true);
  be_.zero(fs.grad_data() + fs.units[u].offset, fs.units[u].numel);  // backward adds into them
  fs.grads_live[u] = true;
}

void Qwen3Model::unit_reduce_grads(int64_t u) {
  if (!fsdp_) return;
  unit_grads(u);  // a unit no op wrote to sends zeros
  FullShard& fs = *fsdp_;
  const FlatUnit& unit = fs.units[u];
  const BackendArray<float> mine = BackendArray<float>::uninit(be_, unit.shard);  // the collective writes it
  fs.sample();
  fs.around_padding(be_, fs.grad_data(), unit, [&] {
    fs.comm.reduce_scatter_sum(fs.grad_data() + unit.offset, mine.get(), unit.shard, DType::F32);
  });
  // Accumulates: several backward passes may precede one optimizer step.
  be_.run<AddInplace>(fs.g.get() + unit.slice_offset, mine.get(), unit.shard);
  fs.release(*fs.grads, unit, sizeof(float), true);
  fs.grads_live[u] = false;
  fs.scattered += static_cast<int64_t>(sizeof(float)) * unit.shard * fs.ranks;
}

// A pass that threw part way may leave units in place (and a gather pending): the next pass must gather
// the current shards again, and the memory goes back. Nothing to do after a pass that completed.
void Qwen3Model::release_unit_weights() {
  if (!fsdp_ || fsdp_->pinned) return;
  for (int64_t u = 0; u < static_cast<int64_t>(fsdp_->units.size()); ++u) unit_release(u);
}

void Qwen3Model::release_unit_grads() {
  FullShard& fs = *fsdp_;
  for (size_t u = 0; u < fs.units.size(); ++u)
    if (fs.grads_live[u]) {
      fs.release(*fs.grads, fs.units[u], sizeof(float), true);
      fs.grads_live[u] = false;
    }
}

void Qwen3Model::vision_units(bool gather) {
  if (!fsdp_) return;
  for (int64_t u = norm_unit() + 1; u < static_cast<int64_t>(fsdp_->units.size()); ++u)
    if (u != head_unit()) gather ? unit_gather(u) : unit_release(u);
}

void Qwen3Model::gather_weights() {
  MEDIX_CHECK(fsdp_, "gather_weights: the model is not fully sharded");
  for (int64_t u = 0; u < static_cast<int64_t>(fsdp_->units.size()); ++u) unit_gather(u);
  fsdp_->pinned = true;
}

void Qwen3Model::release_weights() {
  MEDIX_CHECK(fsdp_, "release_weights: the model is not fully sharded");
  fsdp_->pinned = false;
  for (int64_t u = 0; u < static_cast<int64_t>(fsdp_->units.size()); ++u) unit_release(u);
}

void Qwen3Model::probe_full_shard_memory(bool on) {
  MEDIX_CHECK(fsdp_, "probe_full_shard_memory: the model is not fully sharded");
  fsdp_->probe = on;
  fsdp_->peak = fsdp_->allgathered = fsdp_->scattered = 0;
}

FullShardMemory Qwen3Model::full_shard_memory() const {
  MEDIX_CHECK(fsdp_, "full_shard_memory: the model is not fully sharded");
  const FullShard& fs = *fsdp_;
  FullShardMemory m;
  const int64_t f = sizeof(float);
  m.slice_bytes = f * fs.slice_floats * (adam_m_ ? 4 : 2);
  // With bf16 compute the bf16 layout holds gathered units too (as the peak counts it).
  m.gathered_bytes = fs.resident_bytes();
  m.peak_gathered_bytes = fs.peak;
  m.whole_state_bytes = 4 * f * n_params_;
  for (const FlatUnit& u : fs.units) m.largest_unit_bytes = std::max(m.largest_unit_bytes, 2 * f * u.numel);
  m.allgather_bytes = fs.allgathered;
  m.reduce_scatter_bytes = fs.scattered;
  return m;
}

StepResult Qwen3Model::full_shard_step(const AdamWConfig& cfg, float max_grad_norm, const std::vector<bool>& decay) {
  FullShard& fs = *fsdp_;
  if (fs.pending >= 0) finish_gather();  // its shard is about to change
  release_unit_weights();
  StepResult r;
  // The shards' padding holds zero gradients, so the norm over the shards is the model's.
  if (!clip_and_count_step(fs.g.get(), fs.slice_floats, &fs.scalars, max_grad_norm, r)) return r;
  // A shard may cover parts of several tensors: each part gets its own tensor's weight decay.
  fs.each_owned_part(params_, [&](int64_t t, int64_t lo, int64_t hi, int64_t at) {
    be_.run<AdamwStep>(fs.w.get() + at, fs.g.get() + at, adam_m_ + at, adam_v_ + at, hi - lo, cfg, step_, decay[t]);
  });
  have_training_forward_ = false;  // the saved activations belong to the old parameters
  r.step = step_;
  return r;
}

}  // namespace medix
