// NCCL collectives behind the Communicator interface (native/dist/communicator.h), on device buffers.
// Plain C++ (no CUDA or NCCL headers): implemented in kernels/nccl_communicator.cu, so only builds with
// CUDA define it; libnccl is opened at run time (native/cuda/libraries.h), never linked.
#pragma once
#include <memory>

#include "../dist/communicator.h"

namespace medix::cuda {

// An NCCL communicator over the same processes as `bootstrap` (the MPI world, or a world of one):
// rank 0's unique id is broadcast over it, and this process uses device local_rank() mod the device
// count (one process per GPU). Collectives run on a stream of their own that first waits for the
// work queued on the default stream, and return when they are done (the MPI communicator's
// semantics), but start_gather, which returns at once: finish_gather makes the default stream wait. Variable-size
// allgather, barrier and abort go to `bootstrap`, which must outlive this. Throws naming NCCL and where it looked when
// the library is missing.
std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap);

// The NCCL communicator over world(), made on the first call and kept for the process's life (never
// destroyed: at exit the CUDA context may already be gone). Making it is collective: every rank must
// make the first call at the same point of the run (the trainer's setDataParallel or fullShard).
Communicator& nccl_world();

}  // namespace medix::cuda
