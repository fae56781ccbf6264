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

#include "core/error.h"
#include "cuda/nccl.h"
#include "dist/communicator.h"

namespace {

using medix::Communicator;
using medix::DType;

void cuda_ok(cudaError_t err, const char* what) {
  if (err != cudaSuccess) medix::fail("nccl_check: ", what, ": ", cudaGetErrorString(err));
}

template <typename T>
struct Device {
  T* p = nullptr;
  size_t n;
  explicit Device(const std::vector<T>& host) : n(host.size()) {
    cuda_ok(cudaMalloc(&p, sizeof(T) * n + 1), "cudaMalloc");
    cuda_ok(cudaMemcpy(p, host.data(), sizeof(T) * n, cudaMemcpyHostToDevice), "cudaMemcpy");
  }
  ~Device() { cudaFree(p); }
  std::vector<T> host() const {
    std::vector<T> h(n);
    cuda_ok(cudaMemcpy(h.data(), p, sizeof(T) * n, cudaMemcpyDeviceToHost), "cudaMemcpy");
    return h;
  }
};

template <typename T>
std::vector<T> input(int rank, size_t n) {
  std::vector<T> x(n);
  for (size_t i = 0; i < n; ++i) x[i] = static_cast<T>(1 + rank + static_cast<double>(i) / 8);
  return x;
}

struct Check {
  std::string what;
  bool pass;
};

template <typename T>
void check_all(Communicator& c, DType t, const char* type, std::vector<Check>& out) {
  const int R = c.size(), r = c.rank();
  const size_t n = 1000;
  auto record = [&](const std::string& what, const std::vector<T>& got, const std::vector<T>& want) {
    const bool ok = got == want;
    std::fprintf(stderr, "%-28s %s\n", (what + " " + type).c_str(), ok ? "ok" : "FAIL");
    out.push_back({what + " " + type, ok});
  };
  std::vector<T> sum(n, 0);
  for (int q = 0; q < R; ++q) {
    const std::vector<T> xq = input<T>(q, n);
    for (size_t i = 0; i < n; ++i) sum[i] += xq[i];
  }
  const std::vector<T> mine = input<T>(r, n);
  {
    Device<T> d(mine);
    c.allreduce_sum(d.p, static_cast<int64_t>(n), t);
    record("allreduce_sum", d.host(), sum);
  }
  {
    Device<T> d(mine);
    c.reduce_sum(d.p, static_cast<int64_t>(n), t, R - 1);
    record("reduce_sum", d.host(), r == R - 1 ? sum : mine);
  }
  {
    Device<T> d(mine);
    c.broadcast(d.p, static_cast<int64_t>(sizeof(T) * n), 0);
    record("broadcast", d.host(), input<T>(0, n));
  }
  {
    std::vector<T> want;
    for (int q = 0; q < R; ++q) {
      const std::vector<T> xq = input<T>(q, n);
      want.insert(want.end(), xq.begin(), xq.end());
    }
    Device<T> send(mine), recv(std::vector<T>(n * R, 0));
    c.allgather_equal(send.p, recv.p, static_cast<int64_t>(n), t);
    record("allgather_equal", recv.host(), want);
  }
  {
    // Every rank sends R shards of n; shard q of the sum lands on rank q.
    std::vector<T> send_host, want(n, 0);
    for (int q = 0; q < R; ++q) {
      const std::vector<T> xq = input<T>(r + q, n);
      send_host.insert(send_host.end(), xq.begin(), xq.end());
    }
    for (int q = 0; q < R; ++q) {
      const std::vector<T> contrib = input<T>(q + r, n);  // rank q's shard r
      for (size_t i = 0; i < n; ++i) want[i] += contrib[i];
    }
    Device<T> send(send_host), recv(std::vector<T>(n, 0));
    c.reduce_scatter_sum(send.p, recv.p, static_cast<int64_t>(n), t);
    record("reduce_scatter_sum", recv.host(), want);
  }
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    cudaGetLastError();
    std::fprintf(stderr, "nccl_check: NO CUDA DEVICE; nothing ran\n");
    std::printf("{\"nccl_check\":\"not_run\",\"reason\":\"no CUDA device\"}\n");
    return 2;
  }
  std::unique_ptr<Communicator> comm;
  try {
    comm = medix::cuda::make_nccl_communicator(medix::world());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nccl_check: %s\n", e.what());
    std::printf("{\"nccl_check\":\"not_run\",\"reason\":\"%s\"}\n", "no NCCL communicator (see stderr)");
    return 2;
  }
  std::vector<Check> checks;
  try {
    check_all<float>(*comm, DType::f32, "f32", checks);
    check_all<double>(*comm, DType::f64, "f64", checks);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nccl_check: %s\n", e.what());
    checks.push_back({std::string("error: ") + e.what(), false});
  }
  int failed = 0;
  for (const Check& c : checks) failed += !c.pass;
  std::printf("{\"nccl_check\":\"%s\",\"ranks\":%d,\"rank\":%d,\"checks\":%zu,\"failed\":%d}\n",
              failed ? "fail" : "pass", comm->size(), comm->rank(), checks.size(), failed);
  return failed ? 1 : 0;
}
