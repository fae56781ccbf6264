// The collective checks (collective_checks.h).
#include "collective_checks.h"

#include <algorithm>
#include <cstring>

namespace medix {
namespace {

template <typename T>
std::vector<T> input(int rank, int64_t n) {
  std::vector<T> x(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = static_cast<T>(1 + rank + static_cast<double>(i) / 8);
  return x;
}

// A buffer of the backend holding `host` (or `count` zeros), read back as a host vector.
template <typename T>
class Buffer {
 public:
  Buffer(Backend& be, const std::vector<T>& host) : be_(be), n_(host.size()), p_(be.alloc(sizeof(T) * n_)) {
    be_.from_host(p_, host.data(), sizeof(T) * n_);
  }
  ~Buffer() { be_.release(p_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  void* data() const { return p_; }
  std::vector<T> host() const {
    std::vector<T> h(n_);
    be_.to_host(h.data(), p_, sizeof(T) * n_);
    return h;
  }

 private:
  Backend& be_;
  size_t n_;
  void* p_;
};

template <typename T>
CollectiveCheck judge(const char* collective, const char* dtype, const std::vector<T>& got,
                      const std::vector<T>& want) {
  CollectiveCheck c;
  c.collective = collective;
  c.dtype = dtype;
  for (size_t i = 0; i < want.size(); ++i) c.mismatches += i >= got.size() || got[i] != want[i];
  c.mismatches += got.size() > want.size() ? static_cast<int64_t>(got.size() - want.size()) : 0;
  c.pass = c.mismatches == 0;
  c.result.resize(sizeof(T) * got.size());
  std::memcpy(c.result.data(), got.data(), c.result.size());
  return c;
}

// start_gather (full sharding's weight gathers) of `send` into the first recv_n elements of a buffer of -7s,
// twice: recv_n = R n - n / 3 (the last shard cut), then (R - 1) n - n / 3 where R > 1 (the last rank sends
// nothing), each read through a backend copy queued after finish_gather (which must order it); `gathered`: the
// whole allgather_equal result. The rest of the buffer must keep its -7s.
template <typename T>
CollectiveCheck start_gather_check(Communicator& comm, Backend& be, const void* send, const std::vector<T>& gathered,
                                   int64_t n, DType t, const char* type) {
  const int64_t R = comm.size();
  std::vector<T> got, want;
  for (const int64_t recv_n : {R * n - n / 3, R > 1 ? (R - 1) * n - n / 3 : n / 2}) {
    std::vector<T> expect(gathered);
    std::fill(expect.begin() + recv_n, expect.end(), T(-7));
    Buffer<T> into(be, std::vector<T>(gathered.size(), T(-7))), read(be, std::vector<T>(gathered.size(), T(0)));
    comm.start_gather(be, send, into.data(), n, recv_n, t);
    comm.finish_gather();
    be.copy_bytes(read.data(), into.data(), sizeof(T) * gathered.size());
    const std::vector<T> h = read.host();
    got.insert(got.end(), h.begin(), h.end());
    want.insert(want.end(), expect.begin(), expect.end());
  }
  return judge("start_gather", type, got, want);
}

template <typename T>
void check_type(Communicator& comm, Backend& be, int64_t n, DType t, const char* type,
                std::vector<CollectiveCheck>& out) {
  const int R = comm.size(), r = comm.rank();
  std::vector<T> sum(static_cast<size_t>(n), 0);
  for (int q = 0; q < R; ++q) {
    const std::vector<T> xq = input<T>(q, n);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += xq[i];
  }
  const std::vector<T> mine = input<T>(r, n);
  {
    Buffer<T> b(be, mine);
    comm.allreduce_sum(b.data(), n, t);
    out.push_back(judge("allreduce_sum", type, b.host(), sum));
  }
  {
    Buffer<T> b(be, mine);
    comm.reduce_sum(b.data(), n, t, R - 1);
    out.push_back(judge("reduce_sum", type, b.host(), r == R - 1 ? sum : mine));
  }
  {
    Buffer<T> b(be, mine);
    comm.broadcast(b.data(), static_cast<int64_t>(sizeof(T)) * n, 0);
    out.push_back(judge("broadcast", type, b.host(), input<T>(0, n)));
  }
  {
    std::vector<T> want;
    for (int q = 0; q < R; ++q) {
      const std::vector<T> xq = input<T>(q, n);
      want.insert(want.end(), xq.begin(), xq.end());
    }
    Buffer<T> send(be, mine), recv(be, std::vector<T>(want.size(), 0));
    comm.allgather_equal(send.data(), recv.data(), n, t);
    out.push_back(judge("allgather_equal", type, recv.host(), want));
    out.push_back(start_gather_check(comm, be, send.data(), want, n, t, type));
  }
  {
    // Rank r sends R shards, shard q being input(r + q): shard r of the sum is the sum over q of input(q + r).
    std::vector<T> send_host, want(static_cast<size_t>(n), 0);
    for (int q = 0; q < R; ++q) {
      const std::vector<T> xq = input<T>(r + q, n);
      send_host.insert(send_host.end(), xq.begin(), xq.end());
      const std::vector<T> contrib = input<T>(q + r, n);
      for (size_t i = 0; i < want.size(); ++i) want[i] += contrib[i];
    }
    Buffer<T> send(be, send_host), recv(be, std::vector<T>(static_cast<size_t>(n), 0));
    comm.reduce_scatter_sum(send.data(), recv.data(), n, t);
    out.push_back(judge("reduce_scatter_sum", type, recv.host(), want));
  }
}

// bf16 travels in gathers only (communicator.h): rank q's raw 16-bit values, gathered in rank order
// (the pattern puts the rank in the high bits, so a shard in the wrong place is a mismatch).
void check_bf16_gather(Communicator& comm, Backend& be, int64_t n, std::vector<CollectiveCheck>& out) {
  auto bits = [n](int q) {
    std::vector<uint16_t> x(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) x[static_cast<size_t>(i)] = static_cast<uint16_t>((q << 11) ^ (i * 40503));
    return x;
  };
  std::vector<uint16_t> want;
  for (int q = 0; q < comm.size(); ++q) {
    const std::vector<uint16_t> xq = bits(q);
    want.insert(want.end(), xq.begin(), xq.end());
  }
  Buffer<uint16_t> send(be, bits(comm.rank())), recv(be, std::vector<uint16_t>(want.size(), 0));
  comm.allgather_equal(send.data(), recv.data(), n, DType::BF16);
  out.push_back(judge("allgather_equal", "bf16", recv.host(), want));
  out.push_back(start_gather_check<uint16_t>(comm, be, send.data(), want, n, DType::BF16, "bf16"));
}

}  // namespace

std::vector<CollectiveCheck> check_collectives(Communicator& comm, Backend& memory, int64_t n) {
  std::vector<CollectiveCheck> out;
  check_type<float>(comm, memory, n, DType::F32, "f32", out);
  check_type<double>(comm, memory, n, DType::F64, "f64", out);
  check_bf16_gather(comm, memory, n, out);
  return out;
}

}  // namespace medix
