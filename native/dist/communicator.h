// The processes of a distributed run and the collectives between them. Training calls these
// through a Communicator, so the engine behind it (MPI today; NCCL for GPU buffers later) can
// change without touching the model or the trainer.
//
// Every rank must issue the same collectives in the same order, one at a time (a collective
// started on one rank waits until every rank has started it). Buffers are host memory.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace medix {

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

  // buf[i] = the sum of buf[i] over all ranks, on every rank.
  virtual void allreduce_sum(double* buf, int64_t n) = 0;
  // root's buf[i] = the sum of buf[i] over all ranks; the other ranks' buffers are left unchanged.
  virtual void reduce_sum(float* buf, int64_t n, int root) = 0;
  // Every rank's buf = root's buf.
  virtual void broadcast(void* buf, int64_t bytes, int root) = 0;
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
