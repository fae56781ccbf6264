// Row-major GEMM through cuBLASLt (kernels.h: blas_gemm), opened at run time. One handle and one
// fixed 32 MiB workspace per process (device 0 of the first call), and per shape the matmul
// descriptor, the layouts and the heuristic's first algorithm, kept for later calls: the same shape
// always runs the same algorithm with the same workspace, so its results are the same bits run to run.
//
// cuBLASLt is column-major. A row-major [r, c] matrix with leading dimension ld is the column-major
// [c, r] matrix with the same ld, i.e. its transpose; so row-major C = op(A) op(B) is computed as
// column-major C^T = op(B)^T op(A)^T: the operands swap, each keeps its own transpose flag.
#include <map>
#include <mutex>
#include <tuple>

#include "cuda/libraries.h"
#include "common.cuh"
#include "cublaslt_api.h"

namespace medix::cuda {
namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;
// The heuristic's default assumes operands aligned to 256 bytes (cudaMalloc's alignment); asking for
// less would exclude the fastest kernels, so less is refused here rather than failing inside cuBLASLt.
constexpr uintptr_t kAlignment = 256;
// A shape's M is the packed token count, which changes from micro-batch to micro-batch (and for the MoE
// experts, each expert's row count), so a long run would keep a plan per length it met. Past this many
// (a plan is four small cuBLASLt host objects, whose stack forms the public header sizes at tens of words
// each) they are destroyed and made again as shapes come: the heuristic, asked the same question, gives the same
// algorithm, so the same bits. Large enough for a MoE step's row counts not to empty it every step.
constexpr size_t kMaxPlans = size_t{1} << 16;

struct Api {
  lt::CreateFn create;
  lt::MatmulDescCreateFn desc_create;
  lt::MatmulDescSetAttributeFn desc_set;
  lt::MatrixLayoutCreateFn layout_create;
  lt::PreferenceCreateFn pref_create;
  lt::MatmulDescDestroyFn desc_destroy;
  lt::MatrixLayoutDestroyFn layout_destroy;
  lt::PreferenceDestroyFn pref_destroy;
  lt::PreferenceSetAttributeFn pref_set;
  lt::AlgoGetHeuristicFn heuristic;
  lt::MatmulFn matmul;
};

struct Plan {
  lt::MatmulDesc desc;
  lt::MatrixLayout a, b, c;
  lt::MatmulAlgo algo;
};

using ShapeKey = std::tuple<int, int, bool, bool, int64_t, int64_t, int64_t, int64_t, int64_t, int64_t>;

struct State {
  Api api{};
  lt::Handle handle = nullptr;
  void* workspace = nullptr;
  int device = -1;
  std::map<ShapeKey, Plan> plans;
};

void lt_ok(lt::Status s, const char* call) {
  if (s != lt::kSuccess) fail("cuBLASLt: ", call, " returned status ", s);
}

template <typename Fn>
Fn sym(const LoadedLibrary& lib, const char* name) {
  return reinterpret_cast<Fn>(symbol(lib, name));
}

// Opened on first use: building the addon or starting a program never needs cuBLASLt.
State& state() {
  static State s;
  if (s.handle) return s;
  const LoadedLibrary& lib = load(Library::CublasLt);
  s.api = {sym<lt::CreateFn>(lib, "cublasLtCreate"),
           sym<lt::MatmulDescCreateFn>(lib, "cublasLtMatmulDescCreate"),
           sym<lt::MatmulDescSetAttributeFn>(lib, "cublasLtMatmulDescSetAttribute"),
           sym<lt::MatrixLayoutCreateFn>(lib, "cublasLtMatrixLayoutCreate"),
           sym<lt::PreferenceCreateFn>(lib, "cublasLtMatmulPreferenceCreate"),
           sym<lt::MatmulDescDestroyFn>(lib, "cublasLtMatmulDescDestroy"),
           sym<lt::MatrixLayoutDestroyFn>(lib, "cublasLtMatrixLayoutDestroy"),
           sym<lt::PreferenceDestroyFn>(lib, "cublasLtMatmulPreferenceDestroy"),
           sym<lt::PreferenceSetAttributeFn>(lib, "cublasLtMatmulPreferenceSetAttribute"),
           sym<lt::AlgoGetHeuristicFn>(lib, "cublasLtMatmulAlgoGetHeuristic"),
           sym<lt::MatmulFn>(lib, "cublasLtMatmul")};
  check(cudaGetDevice(&s.device), "cuBLASLt: cudaGetDevice");
  s.workspace = device_alloc(kWorkspaceBytes, 0, "cuBLASLt: workspace", false);
  lt_ok(s.api.create(&s.handle), "cublasLtCreate");
  return s;
}

int lt_type(GemmType t) { return t == GemmType::BF16 ? lt::kR16BF : lt::kR32F; }

// Column-major operands as the header comment derives them.
void fill_plan(State& s, Plan& p, GemmType ab, GemmType c, bool ta, bool tb, int64_t M, int64_t N, int64_t K,
               int64_t lda, int64_t ldb, int64_t ldc) {
  lt_ok(s.api.desc_create(&p.desc, lt::kCompute32F, lt::kR32F), "cublasLtMatmulDescCreate");
  const int32_t op_first = tb ? lt::kOpT : lt::kOpN, op_second = ta ? lt::kOpT : lt::kOpN;
  lt_ok(s.api.desc_set(p.desc, lt::kDescTransA, &op_first, sizeof op_first), "cublasLtMatmulDescSetAttribute");
  lt_ok(s.api.desc_set(p.desc, lt::kDescTransB, &op_second, sizeof op_second), "cublasLtMatmulDescSetAttribute");
  // First operand: B as stored (row-major [K,N], or [N,K] when tb) read column-major.
  lt_ok(s.api.layout_create(&p.a, lt_type(ab), tb ? K : N, tb ? N : K, ldb), "cublasLtMatrixLayoutCreate (B)");
  lt_ok(s.api.layout_create(&p.b, lt_type(ab), ta ? M : K, ta ? K : M, lda), "cublasLtMatrixLayoutCreate (A)");
  lt_ok(s.api.layout_create(&p.c, lt_type(c), N, M, ldc), "cublasLtMatrixLayoutCreate (C)");
  lt::Preference pref = nullptr;
  lt_ok(s.api.pref_create(&pref), "cublasLtMatmulPreferenceCreate");
  const uint64_t ws = kWorkspaceBytes;
  lt::Status st = s.api.pref_set(pref, lt::kPrefMaxWorkspaceBytes, &ws, sizeof ws);
  lt::HeuristicResult result{};
  int found = 0;
  if (st == lt::kSuccess) st = s.api.heuristic(s.handle, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
  s.api.pref_destroy(pref);  // only the heuristic reads it
  lt_ok(st, "cublasLtMatmulPreferenceSetAttribute / cublasLtMatmulAlgoGetHeuristic");
  MEDIX_CHECK(found > 0, "cuBLASLt: no algorithm for M=", M, " N=", N, " K=", K, " (",
              ab == GemmType::BF16 ? "bf16" : "fp32", " inputs)");
  p.algo = result.algo;
}

// Descriptors are host objects that cublasLtMatmul reads when it enqueues, so matmuls still running
// on the device do not need them.
void destroy(State& s, Plan& p) {
  if (p.desc) s.api.desc_destroy(p.desc);
  for (lt::MatrixLayout l : {p.a, p.b, p.c})
    if (l) s.api.layout_destroy(l);
}

// The plan for one shape (fill_plan), or nothing left behind if it cannot be made.
Plan make_plan(State& s, GemmType ab, GemmType c, bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda,
               int64_t ldb, int64_t ldc) {
  Plan p{};
  try {
    fill_plan(s, p, ab, c, ta, tb, M, N, K, lda, ldb, ldc);
  } catch (...) {
    destroy(s, p);  // what was made before the failure
    throw;
  }
  return p;
}

void forget_plans(State& s) {
  for (auto& [key, p] : s.plans) destroy(s, p);
  s.plans.clear();
}

}  // namespace

bool blas_aligned(const void* p) { return reinterpret_cast<uintptr_t>(p) % kAlignment == 0; }

void blas_gemm(GemmType ab, GemmType c, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
               const void* A, int64_t lda, const void* B, int64_t ldb, float beta, void* C, int64_t ldc,
               cudaStream_t stream) {
  MEDIX_CHECK(M >= 0 && N >= 0 && K >= 0, "blas_gemm: M, N, K must be >= 0, got ", M, ", ", N, ", ", K);
  MEDIX_CHECK(ab == GemmType::BF16 || c == GemmType::F32, "blas_gemm: fp32 inputs need an fp32 output");
  if (M == 0 || N == 0) return;
  MEDIX_CHECK(blas_aligned(A) && blas_aligned(B) && blas_aligned(C), "blas_gemm: A, B and C must be ", kAlignment,
              "-byte aligned (cudaMalloc pointers, or offsets that keep that alignment)");
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  State& s = state();
  int device = -1;
  check(cudaGetDevice(&device), "blas_gemm: cudaGetDevice");
  MEDIX_CHECK(device == s.device, "blas_gemm: cuBLASLt was set up on device ", s.device, ", called on device ", device,
              " (one device per process for now)");
  const ShapeKey key{static_cast<int>(ab), static_cast<int>(c), trans_a, trans_b, M, N, K, lda, ldb, ldc};
  auto it = s.plans.find(key);
  if (it == s.plans.end()) {
    if (s.plans.size() >= kMaxPlans) forget_plans(s);
    it = s.plans.emplace(key, make_plan(s, ab, c, trans_a, trans_b, M, N, K, lda, ldb, ldc)).first;
  }
  const Plan& p = it->second;
  lt_ok(s.api.matmul(s.handle, p.desc, &alpha, B, p.a, A, p.b, &beta, C, p.c, C, p.c, &p.algo, s.workspace,
                     kWorkspaceBytes, stream),
        "cublasLtMatmul");
}

}  // namespace medix::cuda
