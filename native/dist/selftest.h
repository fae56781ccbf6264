// `medix selftest --dist`: every collective checked on each engine this run can use, the MPI (or
// single-process) world on host buffers and, when every rank has a CUDA device and NCCL, an NCCL
// communicator over the same ranks on device buffers; the two engines' results compared bit for bit.
// A user runs it under mpirun on a new multi-GPU node before trusting a long run to it.
#pragma once
#include <string>
#include <vector>

#include "collective_checks.h"

namespace medix {

struct EngineSelftest {
  std::string engine;  // "mpi", "single" or "nccl"
  bool ran = false;
  std::string reason;  // why it did not run
  std::vector<CollectiveCheck> checks;
};

struct DistSelftest {
  int rank = 0, size = 1;
  EngineSelftest host, nccl;
  // Checks whose result differs between NCCL and the host engine on this rank (0 when NCCL did not run).
  int64_t engines_differ = 0;
  // Failed checks and engine differences summed over every rank, so every rank knows the verdict.
  int64_t failed_all_ranks = 0;
};

// Collective: every rank of the world must call it.
DistSelftest run_dist_selftest();

}  // namespace medix
