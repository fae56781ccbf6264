// The distributed self-test (selftest.h).
#include "selftest.h"

#include <memory>

#if defined(MEDIX_HAVE_CUDA)
#include "../cuda/cuda_backend.h"
#include "../cuda/devices.h"
#include "../cuda/libraries.h"
#include "../cuda/nccl.h"
#endif

namespace medix {
namespace {

int64_t failed(const EngineSelftest& e) {
  int64_t n = 0;
  for (const CollectiveCheck& c : e.checks) n += !c.pass;
  return n;
}

#if defined(MEDIX_HAVE_CUDA)
// Whether every rank can say yes: NCCL must start on all ranks or on none (a rank left out of the
// communicator's bootstrap would leave the others waiting).
bool all_ranks(Communicator& w, bool mine) {
  double yes = mine ? 1 : 0;
  w.allreduce_sum(&yes, 1, DType::F64);
  return yes == w.size();
}

void run_nccl(Communicator& w, EngineSelftest& out) {
  std::string why;
  if (!all_ranks(w, cuda::device_count(&why) > 0)) {
    out.reason = why.empty() ? "another rank has no CUDA device" : "no CUDA device (" + why + ")";
    return;
  }
  bool loaded = true;
  try {
    cuda::load(cuda::Library::Nccl);
  } catch (const std::exception& e) {
    loaded = false;
    why = e.what();
  }
  if (!all_ranks(w, loaded)) {
    out.reason = why.empty() ? "NCCL did not load on another rank" : why;
    return;
  }
  std::unique_ptr<Communicator> nccl = cuda::make_nccl_communicator(w);
  out.checks = check_collectives(*nccl, cuda::backend());
  out.ran = true;
}
#endif

}  // namespace

DistSelftest run_dist_selftest() {
  Communicator& w = world();
  DistSelftest r;
  r.rank = w.rank();
  r.size = w.size();
  r.host.engine = w.name();
  r.host.checks = check_collectives(w, cpu_backend());
  r.host.ran = true;
  r.nccl.engine = "nccl";
#if defined(MEDIX_HAVE_CUDA)
  run_nccl(w, r.nccl);
#else
  r.nccl.reason = "this build of medix has no CUDA (nvcc was not found when the addon was built, or MEDIX_NO_CUDA=1)";
#endif
  for (size_t i = 0; r.nccl.ran && i < r.nccl.checks.size(); ++i)
    r.engines_differ += r.nccl.checks[i].result != r.host.checks[i].result;
  double bad = static_cast<double>(failed(r.host) + failed(r.nccl) + r.engines_differ);
  w.allreduce_sum(&bad, 1, DType::F64);
  r.failed_all_ranks = static_cast<int64_t>(bad);
  return r;
}

}  // namespace medix
