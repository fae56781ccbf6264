// The NCCL communicator's check (issue 15): every collective of the Communicator interface on device
// buffers, against its direct formula over the ranks' inputs (rank r holds x_i = 1 + r + i / 8, exact in
// fp32 and fp64 for the sizes used, so sums are exact and compared bit for bit). One process checks a
// 1-rank communicator end to end (bootstrap, unique id, stream ordering); under a launcher with an MPI
// build every rank checks its part. Prints a line per collective to stderr and one JSON line to stdout.
// Exits 0 when every check passes, 1 when one fails, 2 when it could not run (no CUDA device, or no
// NCCL library: the reason is printed, naming where it looked).
#include <cuda_runtime.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/nccl.h"
#include "dist/collective_checks.h"

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    std::fprintf(stderr, "nccl_check: NO CUDA DEVICE; nothing ran\n");
    std::printf("{\"nccl_check\":\"not_run\",\"reason\":\"no CUDA device\"}\n");
    return 2;
  }
  std::unique_ptr<medix::Communicator> comm;
  try {
    comm = medix::cuda::make_nccl_communicator(medix::world());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nccl_check: %s\n", e.what());
    std::printf("{\"nccl_check\":\"not_run\",\"reason\":\"%s\"}\n", "no NCCL communicator (see stderr)");
    return 2;
  }
  std::vector<medix::CollectiveCheck> checks;
  int failed = 0;
  try {
    checks = medix::check_collectives(*comm, medix::cuda::backend());
  } catch (const std::exception& e) {
    failed = 1;
    std::fprintf(stderr, "nccl_check: %s\n", e.what());
  }
  for (const medix::CollectiveCheck& c : checks) {
    std::fprintf(stderr, "%-28s %s\n", (c.collective + " " + c.dtype).c_str(), c.pass ? "ok" : "FAIL");
    failed += !c.pass;
  }
  std::printf("{\"nccl_check\":\"%s\",\"ranks\":%d,\"rank\":%d,\"checks\":%zu,\"failed\":%d}\n",
              failed ? "fail" : "pass", comm->size(), comm->rank(), checks.size(), failed);
  return failed ? 1 : 0;
}
