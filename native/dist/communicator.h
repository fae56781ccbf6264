// The processes of a distributed run and the collectives between them. Training calls these
// through a Communicator, so the engine behind it (MPI today; NCCL for GPU buffers later) can
// change without touching the model or the trainer.
//
// Every rank must issue the same collectives in the same order, one at a time (a collective
// started on one rank waits until every rank has started it). The collectives take untyped
// buffers and an element type, so one sharding code drives any engine: the MPI communicator's
// buffers are host memory; an NCCL one would take the device memory its backend allocates.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "../core/backend.h"
#include "../core/dtype.h"

namespace medix {

// The collectives carry f32, f64 and bf16 (core/dtype.h; sums are computed in that type). bf16 travels
// in allgather_equal only, as full sharding's bf16 weight gathers do: a sum in bf16 would lose gradients
// below its 8 significant bits, so the summing collectives refuse it.
// Throws, naming the collective, when t cannot be summed (bf16, i32).
void check_summable(DType t, const char* collective);

class Communicator {
 public:
  virtual ~Communicator() = default;
  // "mpi", or "single" for a world of one process.
  virtual const char* name() const = 0;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank and count among the processes on this machine (to share its cores between them).
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;

  // buf[i] = the sum of buf[i] over all ranks, on every rank (n elements of type t).
  virtual void allreduce_sum(void* buf, int64_t n, DType t) = 0;
  // root's buf[i] = the sum of buf[i] over all ranks; the other ranks' buffers are left unchanged.
  virtual void reduce_sum(void* buf, int64_t n, DType t, int root) = 0;
  // Every rank's buf = root's buf.
  virtual void broadcast(void* buf, int64_t bytes, int root) = 0;
  // Equal shards: recv[r * n + i] = rank r's send[i], on every rank (recv holds size() * n elements;
  // send may point into recv at this rank's place).
  virtual void allgather_equal(const void* send, void* recv, int64_t n, DType t) = 0;
  // Equal shards, summed: recv[i] = the sum over ranks of their send[rank() * n + i] (send holds
  // size() * n elements, recv n).
  virtual void reduce_scatter_sum(const void* send, void* recv, int64_t n, DType t) = 0;
  // Full sharding's weight gathers: allgather_equal into the first recv_n elements of recv only (recv_n <=
  // size() * n; the last shards' padding is not written, so a unit lands in its place in a layout without
  // touching its neighbour, which may be in use). Started here, complete after finish_gather(): an engine
  // that can run it beside the work queued on the backend (NCCL, on its own stream) returns at once and
  // finish_gather() orders the backend's later work after it, so the next unit's gather overlaps the
  // current unit's compute; the others complete it here. One at a time; send must stay valid until
  // finish_gather. `be` is the backend whose memory send and recv are.
  virtual void start_gather(Backend& be, const void* send, void* recv, int64_t n, int64_t recv_n, DType t) = 0;
  virtual void finish_gather() {}
  // Whether start_gather returns before the gather is done (NCCL): full sharding then prefetches the next
  // unit, holding two in place; elsewhere it would only cost the memory.
  virtual bool gathers_async() const { return false; }
  // Every rank's bytes, in rank order (the sizes may differ between ranks).
  virtual std::vector<std::vector<uint8_t>> allgather(const void* data, int64_t bytes) = 0;
  virtual void barrier() = 0;
  // Ends every process of the run (a rank that fails alone would leave the others waiting forever).
  [[noreturn]] virtual void abort(int code) = 0;
};

// The run this process belongs to. The first call decides: the MPI world when the process was
// started by an MPI launcher (mpirun, mpiexec, or srun with PMI) and this build has MPI, else a
// world of one process. Throws, naming the cause, when a launcher started several processes that
// this build or launch cannot connect (they would otherwise each train alone on the same files).
Communicator& world();

// Whether this build links MPI, and the library's own description ("" without it).
bool mpi_compiled();
std::string mpi_library_version();

}  // namespace medix
