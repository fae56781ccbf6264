// Ranks as forked processes over shared memory, for device_memory_guard's full-sharding cases: a
// Communicator whose buffers are either host memory or one backend's memory, moved through the host with
// that backend's to_host/from_host (so the device-memory guard checks every buffer a collective is given,
// as NCCL would need device memory there). Sums run in rank order on the host, so every rank gets the same
// bits and a CPU run and a guard run of the same ranks match bit for bit.
#pragma once
#include <pthread.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "dist/communicator.h"

namespace medix::testing {

// Made before fork (anonymous shared mapping), one per run of kRanks processes: three, so that units
// whose size is not a multiple of the ranks (padding) occur in the small test models.
struct ForkShared {
  static constexpr int kRanks = 3;
  static constexpr int64_t kSlot = int64_t(8) << 20;  // bytes a rank can put in one collective
  pthread_barrier_t barrier;
  char slot[kRanks][kSlot];

  static ForkShared* make() {
    void* p = mmap(nullptr, sizeof(ForkShared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    MEDIX_CHECK(p != MAP_FAILED, "fork ranks: shared mapping failed");
    auto* s = static_cast<ForkShared*>(p);
    pthread_barrierattr_t a;
    pthread_barrierattr_init(&a);
    pthread_barrierattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
    pthread_barrier_init(&s->barrier, &a, kRanks);
    return s;
  }
};

class ForkRanks final : public Communicator {
 public:
  // device: the backend whose memory every buffer is; null for host buffers.
  ForkRanks(ForkShared& s, int rank, Backend* device) : s_(s), rank_(rank), be_(device) {}
  const char* name() const override { return be_ ? "fork ranks (backend buffers)" : "fork ranks (host buffers)"; }
  int rank() const override { return rank_; }
  int size() const override { return ForkShared::kRanks; }
  int local_rank() const override { return rank_; }
  int local_size() const override { return ForkShared::kRanks; }

  void allreduce_sum(void* buf, int64_t n, DType t) override {
    check_summable(t, "allreduce_sum");
    put(buf, n * size_of(t));
    give(buf, summed(0, n, t).data(), n * size_of(t));
    sync();
  }
  void reduce_sum(void* buf, int64_t n, DType t, int root) override {
    check_summable(t, "reduce_sum");
    put(buf, n * size_of(t));
    if (rank_ == root) give(buf, summed(0, n, t).data(), n * size_of(t));
    sync();
  }
  void broadcast(void* buf, int64_t bytes, int root) override {
    if (rank_ == root) stage(buf, bytes);
    sync();
    if (rank_ != root) give(buf, s_.slot[root], bytes);
    sync();
  }
  void allgather_equal(const void* send, void* recv, int64_t n, DType t) override {
    const int64_t bytes = n * size_of(t);
    put(send, bytes);
    for (int r = 0; r < size(); ++r) give(static_cast<char*>(recv) + r * bytes, s_.slot[r], bytes);
    sync();
  }
  void reduce_scatter_sum(const void* send, void* recv, int64_t n, DType t) override {
    check_summable(t, "reduce_scatter_sum");
    put(send, size() * n * size_of(t));
    give(recv, summed(rank_ * n, n, t).data(), n * size_of(t));
    sync();
  }
  std::vector<std::vector<uint8_t>> allgather(const void* data, int64_t bytes) override {
    MEDIX_CHECK(static_cast<int64_t>(sizeof(int64_t)) + bytes <= ForkShared::kSlot, "fork ranks: allgather too large");
    std::memcpy(s_.slot[rank_], &bytes, sizeof bytes);
    std::memcpy(s_.slot[rank_] + sizeof bytes, data, static_cast<size_t>(bytes));
    sync();
    std::vector<std::vector<uint8_t>> all(size());
    for (int r = 0; r < size(); ++r) {
      int64_t n = 0;
      std::memcpy(&n, s_.slot[r], sizeof n);
      const auto* p = reinterpret_cast<const uint8_t*>(s_.slot[r] + sizeof n);
      all[r].assign(p, p + n);
    }
    sync();
    return all;
  }
  // Full sharding's gathers run at finish_gather, as if on a stream of their own that the model's next
  // read waits for: a unit read before its gather is finished holds what its memory held (NaN on the
  // guard, whose fresh granules are NaN-filled), and says so in the outputs.
  void start_gather(Backend&, const void* send, void* recv, int64_t n, int64_t recv_n, DType t) override {
    MEDIX_CHECK(!started_, "fork ranks: start_gather while another gather is started");
    MEDIX_CHECK(recv_n >= 0 && recv_n <= size() * n, "fork ranks: start_gather: ", recv_n, " elements do not fit");
    started_ = true;
    gather_ = {send, recv, n, recv_n, t};
  }
  void finish_gather() override {
    MEDIX_CHECK(started_, "fork ranks: finish_gather without a started gather");
    started_ = false;
    const int64_t e = size_of(gather_.t);
    put(gather_.send, gather_.n * e);
    for (int r = 0; r < size(); ++r) {
      const int64_t count = std::clamp<int64_t>(gather_.recv_n - r * gather_.n, 0, gather_.n);
      if (count > 0) give(static_cast<char*>(gather_.recv) + r * gather_.n * e, s_.slot[r], count * e);
    }
    sync();
  }
  bool gathers_async() const override { return true; }
  void barrier() override { sync(); }
  [[noreturn]] void abort(int code) override { std::_Exit(code); }

 private:
  static int64_t size_of(DType t) { return static_cast<int64_t>(dtype_bytes(t)); }
  void sync() { pthread_barrier_wait(&s_.barrier); }
  void stage(const void* src, int64_t bytes) {
    MEDIX_CHECK(bytes <= ForkShared::kSlot, "fork ranks: ", bytes, " bytes exceed a slot");
    if (be_)
      be_->to_host(s_.slot[rank_], src, static_cast<size_t>(bytes));
    else
      std::memcpy(s_.slot[rank_], src, static_cast<size_t>(bytes));
  }
  // This rank's buffer into its slot, then every rank's is there.
  void put(const void* src, int64_t bytes) {
    stage(src, bytes);
    sync();
  }
  void give(void* dst, const void* host, int64_t bytes) {
    if (be_)
      be_->from_host(dst, host, static_cast<size_t>(bytes));
    else
      std::memmove(dst, host, static_cast<size_t>(bytes));
  }
  // Elements [from, from + n) of the slots, summed in rank order.
  std::vector<char> summed(int64_t from, int64_t n, DType t) const {
    std::vector<char> out(static_cast<size_t>(n * size_of(t)));
    for (int64_t i = 0; i < n; ++i)
      if (t == DType::F32) {
        float sum = 0.0f;
        for (int r = 0; r < size(); ++r) sum += reinterpret_cast<const float*>(s_.slot[r])[from + i];
        reinterpret_cast<float*>(out.data())[i] = sum;
      } else {
        double sum = 0.0;
        for (int r = 0; r < size(); ++r) sum += reinterpret_cast<const double*>(s_.slot[r])[from + i];
        reinterpret_cast<double*>(out.data())[i] = sum;
      }
    return out;
  }
  ForkShared& s_;
  int rank_;
  Backend* be_;
  struct Gather {
    const void* send;
    void* recv;
    int64_t n, recv_n;
    DType t;
  };
  bool started_ = false;
  Gather gather_{};
};

}  // namespace medix::testing
