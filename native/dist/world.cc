// Which world this process is in: the MPI world when an MPI launcher started it, else one process.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>

#include "../core/error.h"
#include "communicator.h"
#include "mpi_world.h"

namespace medix {
namespace {

// A world of one process: every collective is the identity.
class SingleProcess final : public Communicator {
 public:
  const char* name() const override { return "single"; }
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  void allreduce_sum(void*, int64_t, DType t) override { check_summable(t, "allreduce_sum"); }
  void reduce_sum(void*, int64_t, DType t, int) override { check_summable(t, "reduce_sum"); }
  void broadcast(void*, int64_t, int) override {}
  void allgather_equal(const void* send, void* recv, int64_t n, DType t) override {
    if (send != recv) std::memmove(recv, send, n * dtype_bytes(t));
  }
  // Host memory (the CPU backend's): the shard's first recv_n elements, in place.
  void start_gather(Backend&, const void* send, void* recv, int64_t n, int64_t recv_n, DType t) override {
    MEDIX_CHECK(recv_n >= 0 && recv_n <= n, "start_gather: ", recv_n, " elements do not fit a shard of ", n);
    if (send != recv) std::memmove(recv, send, recv_n * dtype_bytes(t));
  }
  void reduce_scatter_sum(const void* send, void* recv, int64_t n, DType t) override {
    check_summable(t, "reduce_scatter_sum");
    if (send != recv) std::memmove(recv, send, n * dtype_bytes(t));
  }
  std::vector<std::vector<uint8_t>> allgather(const void* data, int64_t bytes) override {
    const auto* p = static_cast<const uint8_t*>(data);
    return {std::vector<uint8_t>(p, p + bytes)};
  }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::_Exit(code); }
};

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? v : nullptr;
}

#ifdef MEDIX_HAVE_MPI
// Set by mpirun/mpiexec (Open MPI, MPICH's Hydra) and by srun when it starts tasks with PMI or PMIx.
// A plain `node` run has none of them and never initialises MPI.
bool started_by_mpi_launcher() {
  return env("OMPI_COMM_WORLD_SIZE") || env("PMIX_RANK") || env("PMI_RANK") || env("PMI_SIZE");
}
#else
// How many processes an MPI launcher says it started (0: none did).
long launched_processes() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = env(name)) return std::strtol(v, nullptr, 10);
  return 0;
}
#endif

std::unique_ptr<Communicator> open_world() {
#ifdef MEDIX_HAVE_MPI
  if (started_by_mpi_launcher()) return open_mpi_world();
#else
  const long n = launched_processes();
  if (n > 1)
    fail("this process is one of ", n, " processes an MPI launcher started, but this build of medix has no MPI ",
         "(each would train alone on the same files); install an MPI (e.g. libopenmpi-dev) and rebuild the addon");
#endif
  return std::make_unique<SingleProcess>();
}

}  // namespace

void check_summable(DType t, const char* collective) {
  MEDIX_CHECK(t != DType::BF16, collective,
              ": bf16 cannot be summed (it would drop what lies below its 8 significant "
              "bits); bf16 travels in allgather_equal only");
  MEDIX_CHECK(t == DType::F32 || t == DType::F64, collective, ": ", dtype_name(t), " cannot be summed (f32, f64)");
}

Communicator& world() {
  static std::once_flag once;
  static std::unique_ptr<Communicator> w;
  std::call_once(once, [] { w = open_world(); });
  return *w;
}

bool mpi_compiled() {
#ifdef MEDIX_HAVE_MPI
  return true;
#else
  return false;
#endif
}

std::string mpi_library_version() {
#ifdef MEDIX_HAVE_MPI
  return mpi_version_string();
#else
  return "";
#endif
}

}  // namespace medix
