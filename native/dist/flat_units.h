// Full sharding (FSDP): the model's flat layout cut into units (the embedding, each decoder layer,
// the final norm, the head, the vision tower's blocks), each split into one equal shard per rank.
// A rank keeps only its shard of every unit, one after another in its slice buffers (master
// weights, gradients, AdamW moments); a unit is all-gathered whole only while it computes.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace medix {

struct FlatUnit {
  int64_t first_tensor = 0, end_tensor = 0;  // tensors [first, end) of the layout
  int64_t offset = 0, numel = 0;             // floats [offset, offset + numel) of the layout
  int64_t shard = 0;                         // floats per rank: numel padded to a multiple of ranks, / ranks
  int64_t slice_offset = 0;                  // where the unit's shard starts in a rank's slice buffers
  // Floats [from, from + count) of the layout that rank r's shard holds (count 0: only padding).
  int64_t owned_from(int r) const { return offset + r * shard; }
  int64_t owned_count(int r) const;
};

// The unit a tensor belongs to, from its Hugging Face name: the name up to its first numeric
// component ("model.layers.3", "model.visual.blocks.0"), else its first components without the
// last ("model.embed_tokens", "model.norm", "lm_head", "model.visual.merger").
std::string unit_key(const std::string& tensor_name);

// Units of consecutive tensors with equal keys; numels[i] is tensor i's size, laid out in order.
std::vector<FlatUnit> flat_units(const std::vector<int64_t>& numels, const std::vector<std::string>& keys, int ranks);

}  // namespace medix
