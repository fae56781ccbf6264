// The state full sharding adds to a Qwen3 model (qwen3_fsdp.cc): this rank's shards and the
// reserved layouts whole units are gathered into.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "../dist/flat_units.h"
#include "../dist/reserved_floats.h"
#include "qwen3.h"

namespace medix {

struct Qwen3Model::FullShard {
  FullShard(Communicator& c, std::vector<FlatUnit> u, int64_t layout)
      : comm(c),
        rank(c.rank()),
        ranks(c.size()),
        units(std::move(u)),
        weights(layout + ranks),
        grads(layout + ranks),
        compute((layout + ranks + 1) / 2),
        gathered(units.size(), false) {
    slice_floats = units.back().slice_offset + units.back().shard;
  }
  Communicator& comm;
  int rank, ranks;
  std::vector<FlatUnit> units;
  ReservedFloats weights, grads;  // the whole layout, plus room for the last unit's padding
  // With bf16 compute: the same layout in bf16 (two values a float), what gathers bring and the
  // linear layers read (weights then holds these values widened, for the ops that read f32).
  ReservedFloats compute;
  uint16_t* compute_bits() const { return reinterpret_cast<uint16_t*>(compute.data()); }
  std::vector<bool> gathered;  // whose weights are in place
  bool pinned = false;         // gather_weights: every unit stays until release_weights
  int64_t slice_floats = 0;
  std::vector<float> w, g;  // this rank's shards of the master weights and gradients (slice layout)
  bool probe = false;
  int64_t peak = 0, allgathered = 0, scattered = 0;

  // Runs fn with the padding after unit u's floats (up to ranks - 1 floats, which belong to the next
  // unit or lie past the layout) set aside: the equal-shard collectives read or write it.
  template <typename T, typename Fn>
  void around_padding(T* region, const FlatUnit& u, Fn fn) {
    T* tail = region + u.offset + u.numel;
    const int64_t pad = u.shard * ranks - u.numel;
    std::vector<T> saved(tail, tail + pad);
    std::fill(tail, tail + pad, T(0));  // zero gradient padding; weight padding is overwritten anyway
    fn();
    std::copy(saved.begin(), saved.end(), tail);
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
  // Gives back unit u's bf16 values: only the floats wholly inside it, so a neighbouring unit's value
  // sharing a float at an odd edge is never cleared (at most one stale value at each edge remains,
  // unread until a gather overwrites it).
  void discard_compute(const FlatUnit& u) {
    const int64_t from = (u.offset + 1) / 2, to = (u.offset + u.numel) / 2;
    compute.discard(from, to - from);
  }
  void sample() {
    if (probe) peak = std::max(peak, weights.resident_bytes() + grads.resident_bytes() + compute.resident_bytes());
  }
};

}  // namespace medix
