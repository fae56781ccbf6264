// The MPI communicator over MPI_COMM_WORLD. Built only with MEDIX_HAVE_MPI (scripts/detect-mpi.cjs).
#include "mpi_world.h"

#ifdef MEDIX_HAVE_MPI
#include <dlfcn.h>
#define OMPI_SKIP_MPICXX 1  // the C API only
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "../core/error.h"

namespace medix {
namespace {

// MPI counts are ints: larger buffers go in pieces of this many elements.
constexpr int64_t kChunk = int64_t(1) << 28;

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail("MPI ", what, " failed: ", std::string(text, len));
}

// Waits for every rank to reach this point without spinning a core: ranks often arrive far apart
// (one still generating or scoring while another waits), and on a machine whose cores are shared
// between ranks a busy wait would slow down the very rank being waited for. Once all have arrived,
// the collective that follows runs at full speed.
void arrive() {
  MPI_Request req;
  check(MPI_Ibarrier(MPI_COMM_WORLD, &req), "Ibarrier");
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    int done = 0;
    check(MPI_Test(&req, &done, MPI_STATUS_IGNORE), "Test");
    if (done) return;
    if (std::chrono::steady_clock::now() - start > std::chrono::microseconds(200))
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
}

void finalize_at_exit() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) MPI_Finalize();
}

// bf16 is moved as its raw 16 bits (gathers only: check_summable keeps it out of sums).
MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::F32:
      return MPI_FLOAT;
    case DType::F64:
      return MPI_DOUBLE;
    case DType::BF16:
      return MPI_UINT16_T;
    case DType::I32:
      return MPI_INT32_T;
  }
  return MPI_DATATYPE_NULL;
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "Comm_size");
    MPI_Comm node;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "Comm_split_type");
    MPI_Comm_rank(node, &local_rank_);
    MPI_Comm_size(node, &local_size_);
    MPI_Comm_free(&node);
  }

  const char* name() const override { return "mpi"; }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }

  void allreduce_sum(void* buf, int64_t n, DType t) override {
    check_summable(t, "allreduce_sum");
    std::lock_guard<std::mutex> lock(mu_);
    arrive();
    auto* p = static_cast<char*>(buf);
    const size_t bytes = dtype_bytes(t);
    for (int64_t at = 0; at < n; at += kChunk)
      check(MPI_Allreduce(MPI_IN_PLACE, p + at * bytes, static_cast<int>(std::min(kChunk, n - at)), mpi_type(t),
                          MPI_SUM, MPI_COMM_WORLD),
            "Allreduce");
  }

  void reduce_sum(void* buf, int64_t n, DType t, int root) override {
    check_summable(t, "reduce_sum");
    std::lock_guard<std::mutex> lock(mu_);
    arrive();
    auto* p = static_cast<char*>(buf);
    const size_t bytes = dtype_bytes(t);
    for (int64_t at = 0; at < n; at += kChunk) {
      const int count = static_cast<int>(std::min(kChunk, n - at));
      // The root sums into its own buffer; the others only send theirs.
      if (rank_ == root)
        check(MPI_Reduce(MPI_IN_PLACE, p + at * bytes, count, mpi_type(t), MPI_SUM, root, MPI_COMM_WORLD), "Reduce");
      else
        check(MPI_Reduce(p + at * bytes, nullptr, count, mpi_type(t), MPI_SUM, root, MPI_COMM_WORLD), "Reduce");
    }
  }

  void allgather_equal(const void* send, void* recv, int64_t n, DType t) override {
    check_count(n, "allgather_equal");
    std::lock_guard<std::mutex> lock(mu_);
    arrive();
    const auto* mine = static_cast<const char*>(recv) + rank_ * n * dtype_bytes(t);
    const void* from = send == mine ? MPI_IN_PLACE : send;
    check(MPI_Allgather(from, static_cast<int>(n), mpi_type(t), recv, static_cast<int>(n), mpi_type(t), MPI_COMM_WORLD),
          "Allgather");
  }

  // Exact counts (MPI_Allgatherv): the last shards' padding is never written, so no staging copy.
  void start_gather(Backend&, const void* send, void* recv, int64_t n, int64_t recv_n, DType t) override {
    check_count(n, "start_gather");
    MEDIX_CHECK(recv_n >= 0 && recv_n <= size_ * n, "start_gather: ", recv_n, " elements do not fit ", size_,
                " shards of ", n);
    std::vector<int> counts(size_), displs(size_);
    for (int r = 0; r < size_; ++r) {
      counts[r] = static_cast<int>(std::clamp<int64_t>(recv_n - r * n, 0, n));
      displs[r] = static_cast<int>(r * n);
    }
    std::lock_guard<std::mutex> lock(mu_);
    arrive();
    const auto* mine = static_cast<const char*>(recv) + rank_ * n * dtype_bytes(t);
    const void* from = send == mine ? MPI_IN_PLACE : send;
    check(MPI_Allgatherv(from, counts[rank_], mpi_type(t), recv, counts.data(), displs.data(), mpi_type(t),
                         MPI_COMM_WORLD),
          "Allgatherv");
  }

  void reduce_scatter_sum(const void* send, void* recv, int64_t n, DType t) override {
    check_count(n, "reduce_scatter_sum");
    check_summable(t, "reduce_scatter_sum");
    std::lock_guard<std::mutex> lock(mu_);
    arrive();
    check(MPI_Reduce_scatter_block(send, recv, static_cast<int>(n), mpi_type(t), MPI_SUM, MPI_COMM_WORLD),
          "Reduce_scatter_block");
  }

  void broadcast(void* buf, int64_t bytes, int root) override {
    std::lock_guard<std::mutex> lock(mu_);
    arrive();
    auto* p = static_cast<char*>(buf);
    for (int64_t at = 0; at < bytes; at += kChunk)
      check(MPI_Bcast(p + at, static_cast<int>(std::min(kChunk, bytes - at)), MPI_BYTE, root, MPI_COMM_WORLD), "Bcast");
  }

  std::vector<std::vector<uint8_t>> allgather(const void* data, int64_t bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    arrive();
    std::vector<int64_t> sizes(size_);
    check(MPI_Allgather(&bytes, 1, MPI_INT64_T, sizes.data(), 1, MPI_INT64_T, MPI_COMM_WORLD), "Allgather");
    std::vector<int> counts(size_), displs(size_);
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) {
      MEDIX_CHECK(total + sizes[r] <= INT_MAX, "allgather: ", total + sizes[r],
                  " bytes in all is more than one MPI call carries (", INT_MAX, ")");
      counts[r] = static_cast<int>(sizes[r]);
      displs[r] = static_cast<int>(total);
      total += sizes[r];
    }
    std::vector<uint8_t> all(std::max<int64_t>(total, 1));
    check(MPI_Allgatherv(data, static_cast<int>(bytes), MPI_BYTE, all.data(), counts.data(), displs.data(), MPI_BYTE,
                         MPI_COMM_WORLD),
          "Allgatherv");
    std::vector<std::vector<uint8_t>> out(size_);
    for (int r = 0; r < size_; ++r) out[r].assign(all.begin() + displs[r], all.begin() + displs[r] + counts[r]);
    return out;
  }

  void barrier() override {
    std::lock_guard<std::mutex> lock(mu_);
    arrive();
  }

  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; this keeps the promise if it ever did
  }

 private:
  // One call carries a whole shard per rank (shards are laid out rank-major, so they cannot be cut
  // into pieces the way the in-place collectives are).
  void check_count(int64_t n, const char* what) const {
    MEDIX_CHECK(n * size_ <= INT_MAX, what, ": ", n, " elements per rank (", n * size_,
                " in all) is more than one MPI call carries (", INT_MAX, ")");
  }

  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
  // MPI is initialised MPI_THREAD_SERIALIZED: calls may come from any thread (the JS thread or a
  // worker running an optimizer step) but never two at once.
  std::mutex mu_;
};

}  // namespace

std::unique_ptr<Communicator> open_mpi_world() {
  // Node loads addons with RTLD_LOCAL, which hides libmpi's symbols from the plugins Open MPI
  // loads at MPI_Init; builds whose plugins do not link libmpi themselves then fail with undefined
  // symbols (Debian's do link it). Promote the already-loaded libmpi (found from one of its
  // functions) to global scope first.
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&MPI_Init_thread), &info) && info.dli_fname)
    dlopen(info.dli_fname, RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
  int provided = 0;
  check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_SERIALIZED, &provided), "Init_thread");
  std::atexit(finalize_at_exit);
  MEDIX_CHECK(provided >= MPI_THREAD_SERIALIZED, "MPI: the library offers thread level ", provided,
              ", medix needs MPI_THREAD_SERIALIZED (collectives run on worker threads)");
  return std::make_unique<MpiCommunicator>();
}

std::string mpi_version_string() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING];
  int len = 0;
  MPI_Get_library_version(text, &len);
  std::string s(text, len);
  while (!s.empty() && (s.back() == '\n' || s.back() == '\0' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace medix
#endif  // MEDIX_HAVE_MPI
