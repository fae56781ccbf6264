// The NCCL communicator (native/cuda/nccl.h). Each collective: an event recorded on the default
// stream (where the backend queues compute), the communicator's stream made to wait for it, the NCCL
// call, then a wait for the stream, so a collective sees every kernel queued before it and its
// result is in place when it returns, as with MPI. Full sharding's weight gathers (start_gather) drop
// that last wait: the default stream waits for an event after them instead (finish_gather), so the
// next unit's gather runs beside the current unit's compute.
#include <cstdlib>
#include <string>

#include "common.cuh"
#include "cuda/libraries.h"
#include "cuda/nccl.h"
#include "nccl_api.h"

namespace medix::cuda {
namespace {

struct NcclApi {
  nccl::GetVersionFn get_version;
  nccl::GetUniqueIdFn get_unique_id;
  nccl::CommInitRankFn comm_init_rank;
  nccl::CommDestroyFn comm_destroy;
  nccl::GetErrorStringFn error_string;
  nccl::AllReduceFn all_reduce;
  nccl::ReduceFn reduce;
  nccl::BroadcastFn broadcast;
  nccl::AllGatherFn all_gather;
  nccl::ReduceScatterFn reduce_scatter;
};

const NcclApi& api() {
  static const NcclApi fns = [] {
    const LoadedLibrary& lib = load(Library::Nccl);
    auto get = [&](const char* name) { return symbol(lib, name); };
    NcclApi a;
    a.get_version = reinterpret_cast<nccl::GetVersionFn>(get("ncclGetVersion"));
    a.get_unique_id = reinterpret_cast<nccl::GetUniqueIdFn>(get("ncclGetUniqueId"));
    a.comm_init_rank = reinterpret_cast<nccl::CommInitRankFn>(get("ncclCommInitRank"));
    a.comm_destroy = reinterpret_cast<nccl::CommDestroyFn>(get("ncclCommDestroy"));
    a.error_string = reinterpret_cast<nccl::GetErrorStringFn>(get("ncclGetErrorString"));
    a.all_reduce = reinterpret_cast<nccl::AllReduceFn>(get("ncclAllReduce"));
    a.reduce = reinterpret_cast<nccl::ReduceFn>(get("ncclReduce"));
    a.broadcast = reinterpret_cast<nccl::BroadcastFn>(get("ncclBroadcast"));
    a.all_gather = reinterpret_cast<nccl::AllGatherFn>(get("ncclAllGather"));
    a.reduce_scatter = reinterpret_cast<nccl::ReduceScatterFn>(get("ncclReduceScatter"));
    return a;
  }();
  return fns;
}

void nccl_ok(nccl::Result r, const char* what) {
  if (r != nccl::kSuccess) fail("NCCL ", what, ": ", api().error_string(r), " (ncclResult_t ", r, ")");
}

int nccl_type(DType t) {
  switch (t) {
    case DType::F32:
      return nccl::kFloat32;
    case DType::F64:
      return nccl::kFloat64;
    case DType::BF16:
      return nccl::kBfloat16;
    case DType::I32:
      return nccl::kInt32;
  }
  return nccl::kUint8;
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(Communicator& bootstrap) : boot_(bootstrap) {
    const NcclApi& a = api();  // a missing library throws here, before any collective
    int devices = 0;
    check(cudaGetDeviceCount(&devices), "NCCL communicator: cudaGetDeviceCount");
    // NCCL refuses two ranks on one GPU ("duplicate GPU"), after every rank has waited for the id: said first.
    if (boot_.local_size() > devices)
      fail("NCCL communicator: ", boot_.local_size(), " processes on this machine and ", devices,
           " GPU(s): NCCL needs a GPU of its own for each process (start one process per GPU)");
    check(cudaSetDevice(boot_.local_rank() % devices), "NCCL communicator: cudaSetDevice");
    // Connect at init, not at the first collective: the backend's memory pool keeps what the model frees (rollouts
    // fill it before the first optimizer step), so NCCL's buffers are taken now, while the memory is free. A
    // setting of the user's own is kept.
    setenv("NCCL_RUNTIME_CONNECT", "0", 0);
    nccl::UniqueId id{};
    if (boot_.rank() == 0) nccl_ok(a.get_unique_id(&id), "ncclGetUniqueId");
    boot_.broadcast(&id, sizeof id, 0);
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "NCCL communicator: stream");
    check(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming), "NCCL communicator: event");
    check(cudaEventCreateWithFlags(&gathered_, cudaEventDisableTiming), "NCCL communicator: event");
    nccl_ok(a.comm_init_rank(&comm_, boot_.size(), id, boot_.rank()), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    api().comm_destroy(comm_);
    cudaEventDestroy(ready_);
    cudaEventDestroy(gathered_);
    cudaStreamDestroy(stream_);
  }
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  const char* name() const override { return "nccl"; }
  int rank() const override { return boot_.rank(); }
  int size() const override { return boot_.size(); }
  int local_rank() const override { return boot_.local_rank(); }
  int local_size() const override { return boot_.local_size(); }

  void allreduce_sum(void* buf, int64_t n, DType t) override {
    check_summable(t, "allreduce_sum");
    run("ncclAllReduce",
        [&] { return api().all_reduce(buf, buf, static_cast<size_t>(n), nccl_type(t), nccl::kSum, comm_, stream_); });
  }
  void reduce_sum(void* buf, int64_t n, DType t, int root) override {
    check_summable(t, "reduce_sum");
    // In place: NCCL writes the receive buffer on the root only, as the interface requires.
    run("ncclReduce",
        [&] { return api().reduce(buf, buf, static_cast<size_t>(n), nccl_type(t), nccl::kSum, root, comm_, stream_); });
  }
  void broadcast(void* buf, int64_t bytes, int root) override {
    run("ncclBroadcast",
        [&] { return api().broadcast(buf, buf, static_cast<size_t>(bytes), nccl::kUint8, root, comm_, stream_); });
  }
  void allgather_equal(const void* send, void* recv, int64_t n, DType t) override {
    run("ncclAllGather",
        [&] { return api().all_gather(send, recv, static_cast<size_t>(n), nccl_type(t), comm_, stream_); });
  }
  void reduce_scatter_sum(const void* send, void* recv, int64_t n, DType t) override {
    check_summable(t, "reduce_scatter_sum");
    run("ncclReduceScatter", [&] {
      return api().reduce_scatter(send, recv, static_cast<size_t>(n), nccl_type(t), nccl::kSum, comm_, stream_);
    });
  }
  // Into stream-ordered scratch on the communicator's stream, then the first recv_n elements into place
  // (NCCL has no gather of unequal counts); nothing waits on the host.
  void start_gather(Backend&, const void* send, void* recv, int64_t n, int64_t recv_n, DType t) override {
    MEDIX_CHECK(recv_n >= 0 && recv_n <= size() * n, "start_gather: ", recv_n, " elements do not fit ", size(),
                " shards of ", n);
    MEDIX_CHECK(!started_, "start_gather: the last gather was not finished (finish_gather)");
    const size_t e = dtype_bytes(t), all = e * static_cast<size_t>(size() * n);
    check(cudaEventRecord(ready_, 0), "ncclAllGather (start_gather)");
    check(cudaStreamWaitEvent(stream_, ready_, 0), "ncclAllGather (start_gather)");
    void* scratch = device_alloc(all, stream_, "NCCL start_gather scratch");
    try {
      nccl_ok(api().all_gather(send, scratch, static_cast<size_t>(n), nccl_type(t), comm_, stream_), "ncclAllGather");
      check(cudaMemcpyAsync(recv, scratch, e * static_cast<size_t>(recv_n), cudaMemcpyDeviceToDevice, stream_),
            "start_gather: copy into place");
    } catch (...) {
      device_free(scratch, stream_, "NCCL start_gather scratch");
      throw;
    }
    device_free(scratch, stream_, "NCCL start_gather scratch");
    check(cudaEventRecord(gathered_, stream_), "start_gather: event");
    started_ = true;
  }
  void finish_gather() override {
    MEDIX_CHECK(started_, "finish_gather: no gather was started");
    started_ = false;
    check(cudaStreamWaitEvent(0, gathered_, 0), "finish_gather");
  }
  bool gathers_async() const override { return true; }
  // Host bytes of varying sizes (metadata, not tensors): the bootstrap world carries them.
  std::vector<std::vector<uint8_t>> allgather(const void* data, int64_t bytes) override {
    return boot_.allgather(data, bytes);
  }
  void barrier() override { boot_.barrier(); }
  [[noreturn]] void abort(int code) override {
    boot_.abort(code);
    std::_Exit(code);  // not reached: the attribute is not part of the virtual's type
  }

 private:
  template <typename Call>
  void run(const char* what, const Call& call) {
    check(cudaEventRecord(ready_, 0), what);
    check(cudaStreamWaitEvent(stream_, ready_, 0), what);
    nccl_ok(call(), what);
    check(cudaStreamSynchronize(stream_), what);
  }

  Communicator& boot_;
  nccl::Comm comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
  cudaEvent_t ready_ = nullptr;
  cudaEvent_t gathered_ = nullptr;  // after the last start_gather's copy into place
  bool started_ = false;            // a start_gather not yet finished
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(Communicator& bootstrap) {
  return std::make_unique<NcclCommunicator>(bootstrap);
}

Communicator& nccl_world() {
  static Communicator* const comm = make_nccl_communicator(world()).release();
  return *comm;
}

}  // namespace medix::cuda
