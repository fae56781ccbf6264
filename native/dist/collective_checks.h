// Every numeric collective of the Communicator interface (all-reduce, reduce, broadcast, all-gather and
// reduce-scatter of equal shards, full sharding's start_gather, in f32 and f64; all-gather and start_gather in bf16)
// against its direct formula over the ranks' inputs, on buffers of a given Backend: host memory for MPI, device memory
// for NCCL. One check for both, so `medix selftest --dist` and build/cuda-check/nccl_check judge the engines by the
// same rule.
//
// Rank r holds x_i = 1 + r + i / 8: exact in f32 and f64 for the sizes used, so every sum is exact in
// any order and results are compared bit for bit (with the formula, and between engines).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "communicator.h"

namespace medix {

struct CollectiveCheck {
  std::string collective;       // "allreduce_sum", "reduce_sum", "broadcast", "allgather_equal", "start_gather", ...
  std::string dtype;            // "f32" or "f64"
  bool pass = false;            // this rank's result equals the formula bit for bit
  int64_t mismatches = 0;       // elements that differ from the formula
  std::vector<uint8_t> result;  // this rank's result bytes, to compare engines with each other
};

// Runs every check on `comm` with buffers from `memory` (every rank must call it: it issues collectives).
// n: elements per rank and shard. Throws what the communicator or the backend throws.
std::vector<CollectiveCheck> check_collectives(Communicator& comm, Backend& memory, int64_t n = 1000);

}  // namespace medix
