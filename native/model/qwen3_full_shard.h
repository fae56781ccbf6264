// The state full sharding adds to a Qwen3 model (qwen3_fsdp.cc): this rank's shards, in backend memory,
// and the reserved layouts whole units are gathered into.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "../core/backend.h"
#include "../dist/flat_units.h"
#include "qwen3.h"

namespace medix {

struct Qwen3Model::FullShard {
  FullShard(Backend& be, Communicator& c, Communicator& s, std::vector<FlatUnit> u, int64_t layout)
      : comm(c),
        scalars(s),
        rank(c.rank()),
        ranks(c.size()),
        units(std::move(u)),
        weights(be.reserve(f32_bytes(layout + ranks))),
        grads(be.reserve(f32_bytes(layout + ranks))),
        compute(be.reserve(2 * (layout + ranks))),
        gathered(units.size(), false),
        grads_live(units.size(), false),
        slice_floats(units.back().slice_offset + units.back().shard),
        w(be, slice_floats),
        g(be, slice_floats),
        padding(be, ranks) {}
  static int64_t f32_bytes(int64_t n) { return n * static_cast<int64_t>(sizeof(float)); }

  Communicator& comm;     // moves the model's buffers (MPI for host memory, NCCL for a GPU's)
  Communicator& scalars;  // sums host values over the same ranks (comm itself when it takes host memory)
  int rank, ranks;
  std::vector<FlatUnit> units;
  // The whole layout (f32 weights and gradients; bf16 compute weights, what bf16 gathers bring and the
  // linear layers read), plus room for the last unit's padding; backed only where units are in place.
  std::unique_ptr<Reservation> weights, grads, compute;
  float* weight_data() const { return reinterpret_cast<float*>(weights->data()); }
  float* grad_data() const { return reinterpret_cast<float*>(grads->data()); }
  uint16_t* compute_bits() const { return reinterpret_cast<uint16_t*>(compute->data()); }
  std::vector<bool> gathered;    // whose weights are in place (or on their way: the pending gather's unit)
  std::vector<bool> grads_live;  // whose gradients are in place (acquired and zeroed)
  bool pinned = false;           // gather_weights: every unit stays until release_weights
  int64_t slice_floats;
  BackendArray<float> w, g;     // this rank's shards of the master weights and gradients (slice layout)
  BackendArray<float> padding;  // what a unit's gradient padding covers, kept aside while a reduce-scatter runs
  // The gather started and not yet finished (Communicator::start_gather): its unit (-1: none) and, in bf16,
  // the rounded shard it sends, which must live until it is finished.
  int64_t pending = -1;
  BackendArray<uint16_t> pending_shard;
  bool probe = false;
  int64_t peak = 0, allgathered = 0, scattered = 0;

  // Unit u in a layout of `e`-byte elements: its weights (gathered exactly, Communicator::start_gather), or
  // with its padding (up to ranks - 1 elements past its end, which belong to the next unit or lie past the
  // layout), which its gradients' reduce-scatter reads.
  static int64_t span(const FlatUnit& u, bool padded, int ranks) { return padded ? u.shard * ranks : u.numel; }
  void acquire(Reservation& r, const FlatUnit& u, int64_t e, bool padded) const {
    r.acquire(u.offset * e, span(u, padded, ranks) * e);
  }
  void release(Reservation& r, const FlatUnit& u, int64_t e, bool padded) const {
    r.release(u.offset * e, span(u, padded, ranks) * e);
  }
  // Runs fn with unit u's padding in `region` set aside and zeroed (the reduce-scatter sums it), then puts it
  // back: a neighbouring unit's gradients in place there keep their values.
  template <typename Fn>
  void around_padding(Backend& be, float* region, const FlatUnit& u, Fn fn) {
    float* tail = region + u.offset + u.numel;
    const int64_t pad = u.shard * ranks - u.numel;
    if (pad > 0) be.copy(padding.get(), tail, pad), be.zero(tail, pad);
    fn();
    if (pad > 0) be.copy(tail, padding.get(), pad);
  }
  // Calls fn(tensor, lo, hi, at) for each part [lo, hi) of the layout that lies in this rank's shards,
  // one part per tensor per unit; `at` is where the part starts in the slice buffers.
  template <typename Fn>
  void each_owned_part(const std::vector<ParamInfo>& params, Fn fn) const {
    for (const FlatUnit& u : units) {
      const int64_t from = u.owned_from(rank), to = from + u.owned_count(rank);
      for (int64_t t = u.first_tensor; t < u.end_tensor; ++t) {
        const ParamInfo& p = params[t];
        const int64_t lo = std::max(from, p.offset), hi = std::min(to, p.offset + p.numel);
        if (lo < hi) fn(t, lo, hi, u.slice_offset + (lo - from));
      }
    }
  }
  int64_t resident_bytes() const {
    return weights->resident_bytes() + grads->resident_bytes() + compute->resident_bytes();
  }
  void sample() {
    if (probe) peak = std::max(peak, resident_bytes());
  }
};

}  // namespace medix
