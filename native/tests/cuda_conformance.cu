// CUDA backend conformance: every kernel in kernels/ against the CPU reference of native/ops, forward
// and backward, at tiny shapes and Qwen3-like shapes. Prints a line per op to stderr and one JSON
// summary line to stdout; exits 1 if any op fails, 2 if --require-gpu was given and no GPU is usable.
//
// Without a usable CUDA device it says so, runs the CPU references at the tiny shapes and the
// harness self-test only, and exits 0 (the GPU checks are reported as not run, never as passed).
//
//   cuda_conformance [--tiny | --all-shapes] [--require-gpu] [--only OP]
//     --tiny         tiny shapes only (what compute-sanitizer runs)
//     --all-shapes   the Qwen3-like shapes too even without a GPU (times the CPU references only)
//     --require-gpu  no usable device is an error (exit 2): what the GPU machine's check uses
//     --only OP      only the op family OP (e.g. logprob)
//
// Backward gradients start from random values, not zeros, so the accumulate (+=) contract is checked.
// Each GPU case runs twice: the outputs must be bit-identical (determinism), the second run is timed.
// Tolerances are stated per op below (fp32 everywhere; see conformance_harness.h for the rule).
#include <sys/mman.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "conformance_harness.h"
#include "core/threads.h"
#include "cuda/cuda_backend.h"
#include "cuda/libraries.h"
#include "cuda/nccl.h"
#include "dist/communicator.h"
#include "kernels/kernels.h"
#include "model/qwen3.h"
#include "model_params.h"
#include "ops/adamw.h"
#include "ops/attention.h"
#include "ops/embedding.h"
#include "ops/gelu.h"
#include "ops/layernorm.h"
#include "ops/linear.h"
#include "ops/logprob.h"
#include "ops/moe.h"
#include "ops/paged_attention.h"
#include "ops/residual.h"
#include "ops/rmsnorm.h"
#include "ops/rope.h"
#include "ops/swiglu.h"
#include "ops/vision_grid.h"
#include "ops/vision_pos_embed.h"
#include "ops/vision_rope.h"

namespace medix::conformance {
namespace {

using Clock = std::chrono::steady_clock;
using Tolerances = std::map<std::string, Tolerance>;

// Exact: copies, sums in the same order on both sides.
constexpr Tolerance kExact{0.0, 0.0};
// A few float32 ulps: element-wise math where the GPU's expf/fma differ from the CPU's by an ulp or
// two per operation.
constexpr Tolerance kUlps{4e-6, 1e-6};
// Reductions over a row (RMSNorm's mean of squares, fp32 tree on the GPU vs double on the CPU) and
// what follows from them: 1e-5 relative to the row's largest value is ~100 ulps, far below any error
// of the formula (those are O(1)).
constexpr Tolerance kRowReduction{1e-4, 1e-5};
// GEMM outputs (K up to 6144 in fp32, different summation orders): the rounding error is ~eps*sqrt(K)
// times the typical term, about 1e-6 of the output's largest value; 1e-5 leaves a 10x margin.
constexpr Tolerance kGemm{1e-4, 1e-5};

constexpr Tolerance kAttentionGrad{1e-3, 1e-5};
// cuBLASLt with bf16 operands and a bf16 output: the fp32-accumulated result rounded once to bf16,
// so within a bf16 ulp of the fp32 reference (as kBf16); plus fp32 summation-order noise (~1e-6 of
// the largest output) for outputs near zero, where a relative bound means nothing.
constexpr Tolerance kBf16Gemm{0x1p-7, 1e-5};
// fp32 gradients from GEMMs over a bf16-rounded operand (see logprob_blas_case).
constexpr Tolerance kBf16Grad{0x1p-7, 0x1p-8};
// bf16 storage with fp32 math, against the fp32 CPU result on the same (bf16-exact) inputs: the GPU
// result is that value rounded to bf16, so within half a bf16 ulp (2^-8 relative, 8 significand
// bits), or one ulp (2^-7) when fp32 rounding noise moves it across a rounding boundary.
constexpr Tolerance kBf16{0x1p-7, 1e-6};

struct Options {
  bool tiny_only = false, all_shapes = false, require_gpu = false;
  std::string only;
};

struct Context {
  Options opt;
  bool have_gpu = false;
  std::vector<OpResult> results;
};

std::string to_string_shape(std::initializer_list<std::pair<const char*, int64_t>> dims) {
  std::string s;
  for (const auto& [name, v] : dims) s += (s.empty() ? "" : " ") + std::string(name) + "=" + std::to_string(v);
  return s;
}

// Runs one case: the CPU reference (timed), then, with a GPU, the GPU function twice (determinism;
// the second is timed) and the comparison of every output the CPU produced.
void run_case(Context& ctx, const std::string& op, const std::string& shape, const std::function<Outputs()>& cpu,
              const std::function<Outputs(GpuTimer&)>& gpu, const Tolerances& tol) {
  OpResult r;
  r.op = op;
  r.shape = shape;
  std::fprintf(stderr, "%-14s %-60s ", op.c_str(), shape.c_str());
  std::fflush(stderr);
  try {
    const auto t0 = Clock::now();
    const Outputs want = cpu();
    r.cpu_ms = ms_since(t0);
    if (ctx.have_gpu) {
      GpuTimer first, second;
      const Outputs got = gpu(first);
      const Outputs again = gpu(second);
      r.gpu_ran = true;
      r.gpu_ms = second.ms();
      r.deterministic = same_bits(got, again);
      for (const auto& [name, ref] : want) {
        const auto t = tol.find(name);
        const auto g = got.find(name);
        if (t == tol.end() || g == got.end()) fail("case ", op, ": no tolerance or GPU output for '", name, "'");
        r.checks.push_back(compare(name, g->second, ref, t->second));
      }
    }
  } catch (const std::exception& e) {
    r.error = e.what();
  }
  if (!r.error.empty())
    std::fprintf(stderr, "ERROR %s\n", r.error.c_str());
  else if (!r.gpu_ran)
    std::fprintf(stderr, "cpu only (%.1f ms)\n", r.cpu_ms);
  else {
    std::fprintf(stderr, "%s gpu %.3f ms cpu %.1f ms%s\n", r.pass() ? "ok  " : "FAIL", r.gpu_ms, r.cpu_ms,
                 r.deterministic ? "" : " NOT DETERMINISTIC");
    for (const OutputCheck& c : r.checks)
      std::fprintf(stderr, "    %-12s max_abs %.3g max_rel %.3g worst/allowed %.3g %s\n", c.name.c_str(), c.max_abs,
                   c.max_rel, c.worst, c.pass ? "" : c.note.c_str());
  }
  ctx.results.push_back(std::move(r));
}

bool wanted(const Context& ctx, const char* op) { return ctx.opt.only.empty() || ctx.opt.only == op; }

// ---- embedding -------------------------------------------------------------------------------
void embedding_case(Context& ctx, int64_t vocab, int64_t dim, int64_t n) {
  Rng rng(11);
  const std::vector<float> table = random_floats(rng, vocab * dim, -1, 1);
  std::vector<int32_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = i % 4 == 3 ? ids[i - 1] : rng.below(vocab);  // repeated ids
  const std::vector<float> dout = random_floats(rng, n * dim, -1, 1);
  const std::vector<float> dtable0 = random_floats(rng, vocab * dim, -1, 1);
  run_case(
      ctx, "embedding", to_string_shape({{"vocab", vocab}, {"dim", dim}, {"n", n}}),
      [&] {
        std::vector<float> out(n * dim), dtable = dtable0;
        cpu::embedding_forward(out.data(), ids.data(), table.data(), n, dim);
        cpu::embedding_backward(dtable.data(), dout.data(), ids.data(), n, dim);
        return Outputs{{"out", std::move(out)}, {"dtable", std::move(dtable)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<int32_t> d_ids(ids);
        DeviceBuffer<float> d_table(table), d_dout(dout), d_dtable(dtable0), d_out(n * dim);
        timer.start();
        cuda::embedding_forward(d_out.get(), d_ids.get(), d_table.get(), n, dim);
        cuda::embedding_backward(d_dtable.get(), d_dout.get(), d_ids.get(), n, dim);
        timer.stop();
        return Outputs{{"out", d_out.to_host()}, {"dtable", d_dtable.to_host()}};
      },
      {{"out", kExact}, {"dtable", kExact}});
}

// ---- RMSNorm ---------------------------------------------------------------------------------
void rmsnorm_case(Context& ctx, const char* what, int64_t rows, int64_t dim) {
  Rng rng(12);
  const float eps = 1e-6f;
  const std::vector<float> x = random_floats(rng, rows * dim, -2, 2), w = random_floats(rng, dim, 0.5f, 1.5f);
  const std::vector<float> dout = random_floats(rng, rows * dim, -1, 1);
  const std::vector<float> dx0 = random_floats(rng, rows * dim, -1, 1), dw0 = random_floats(rng, dim, -1, 1);
  run_case(
      ctx, "rmsnorm", std::string(what) + " " + to_string_shape({{"rows", rows}, {"dim", dim}}),
      [&] {
        std::vector<float> out(rows * dim), rstd(rows), dx = dx0, dw = dw0;
        cpu::rmsnorm_forward(out.data(), rstd.data(), x.data(), w.data(), rows, dim, eps);
        cpu::rmsnorm_backward(dx.data(), dw.data(), dout.data(), x.data(), w.data(), rstd.data(), rows, dim);
        return Outputs{
            {"out", std::move(out)}, {"rstd", std::move(rstd)}, {"dx", std::move(dx)}, {"dw", std::move(dw)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_x(x), d_w(w), d_dout(dout), d_dx(dx0), d_dw(dw0), d_out(rows * dim), d_rstd(rows);
        timer.start();
        cuda::rmsnorm_forward(d_out.get(), d_rstd.get(), d_x.get(), d_w.get(), rows, dim, eps);
        cuda::rmsnorm_backward(d_dx.get(), d_dw.get(), d_dout.get(), d_x.get(), d_w.get(), d_rstd.get(), rows, dim);
        timer.stop();
        return Outputs{
            {"out", d_out.to_host()}, {"rstd", d_rstd.to_host()}, {"dx", d_dx.to_host()}, {"dw", d_dw.to_host()}};
      },
      {{"out", kRowReduction}, {"rstd", kRowReduction}, {"dx", kRowReduction}, {"dw", kRowReduction}});
}

// ---- rotary ----------------------------------------------------------------------------------
// sections empty: standard rope (P = 1); else multi-section with P = 3 (interleaved or contiguous).
void rope_case(Context& ctx, const char* what, int64_t T, int64_t heads, int64_t head_dim, float theta,
               const std::vector<int64_t>& sections, bool interleaved) {
  Rng rng(13);
  const int P = sections.empty() ? 1 : 3;
  const std::vector<uint8_t> map =
      sections.empty() ? std::vector<uint8_t>{} : rope_section_map(head_dim, sections, interleaved);
  RopeSpec spec;
  spec.head_dim = head_dim;
  spec.theta = theta;
  spec.n_components = P;
  spec.freq_component = map.empty() ? nullptr : map.data();
  std::vector<int32_t> pos(P * T);
  for (int64_t t = 0; t < T; ++t) pos[t] = static_cast<int32_t>(t % 1500);  // packed sequences restart
  for (int64_t i = T; i < P * T; ++i) pos[i] = rng.below(4096);
  const int64_t n = T * heads * head_dim;
  const std::vector<float> x = random_floats(rng, n, -1, 1), dout = random_floats(rng, n, -1, 1);
  const std::vector<float> dx0 = random_floats(rng, n, -1, 1);
  run_case(
      ctx, "rope", std::string(what) + " " + to_string_shape({{"T", T}, {"heads", heads}, {"head_dim", head_dim}}),
      [&] {
        std::vector<float> out(n), dx = dx0;
        cpu::rope_forward(out.data(), x.data(), pos.data(), T, heads, spec);
        cpu::rope_backward(dx.data(), dout.data(), pos.data(), T, heads, spec);
        return Outputs{{"out", std::move(out)}, {"dx", std::move(dx)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<int32_t> d_pos(pos);
        DeviceBuffer<float> d_x(x), d_dout(dout), d_dx(dx0), d_out(n);
        timer.start();
        cuda::rope_forward(d_out.get(), d_x.get(), d_pos.get(), T, heads, spec);
        cuda::rope_backward(d_dx.get(), d_dout.get(), d_pos.get(), T, heads, spec);
        timer.stop();
        return Outputs{{"out", d_out.to_host()}, {"dx", d_dx.to_host()}};
      },
      {{"out", kUlps}, {"dx", kUlps}});
}

// ---- SwiGLU ----------------------------------------------------------------------------------
void swiglu_case(Context& ctx, int64_t n) {
  Rng rng(14);
  const std::vector<float> gate = random_floats(rng, n, -8, 8), up = random_floats(rng, n, -2, 2);
  const std::vector<float> dout = random_floats(rng, n, -1, 1);
  const std::vector<float> dgate0 = random_floats(rng, n, -1, 1), dup0 = random_floats(rng, n, -1, 1);
  run_case(
      ctx, "swiglu", to_string_shape({{"n", n}}),
      [&] {
        std::vector<float> out(n), dgate = dgate0, dup = dup0;
        cpu::swiglu_forward(out.data(), gate.data(), up.data(), n);
        cpu::swiglu_backward(dgate.data(), dup.data(), dout.data(), gate.data(), up.data(), n);
        return Outputs{{"out", std::move(out)}, {"dgate", std::move(dgate)}, {"dup", std::move(dup)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_gate(gate), d_up(up), d_dout(dout), d_dgate(dgate0), d_dup(dup0), d_out(n);
        timer.start();
        cuda::swiglu_forward(d_out.get(), d_gate.get(), d_up.get(), n);
        cuda::swiglu_backward(d_dgate.get(), d_dup.get(), d_dout.get(), d_gate.get(), d_up.get(), n);
        timer.stop();
        return Outputs{{"out", d_out.to_host()}, {"dgate", d_dgate.to_host()}, {"dup", d_dup.to_host()}};
      },
      {{"out", kUlps}, {"dgate", kUlps}, {"dup", kUlps}});
}

// ---- residual --------------------------------------------------------------------------------
void residual_case(Context& ctx, int64_t n) {
  Rng rng(15);
  const std::vector<float> a = random_floats(rng, n, -1, 1), b = random_floats(rng, n, -1, 1);
  const std::vector<float> dst0 = random_floats(rng, n, -1, 1);
  run_case(
      ctx, "residual", to_string_shape({{"n", n}}),
      [&] {
        std::vector<float> out(n), dst = dst0;
        cpu::add_forward(out.data(), a.data(), b.data(), n);
        cpu::add_inplace(dst.data(), a.data(), n);  // backward: dout added into an input's gradient
        return Outputs{{"out", std::move(out)}, {"grad", std::move(dst)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_a(a), d_b(b), d_dst(dst0), d_out(n);
        timer.start();
        cuda::add_forward(d_out.get(), d_a.get(), d_b.get(), n);
        cuda::add_inplace(d_dst.get(), d_a.get(), n);
        timer.stop();
        return Outputs{{"out", d_out.to_host()}, {"grad", d_dst.to_host()}};
      },
      {{"out", kExact}, {"grad", kExact}});
}

// ---- bf16 storage: residual add and SwiGLU ---------------------------------------------------------
using bf16 = __nv_bfloat16;
bf16* as_bf16(const DeviceBuffer<uint16_t>& b) { return reinterpret_cast<bf16*>(b.get()); }

void bf16_elementwise_case(Context& ctx, int64_t n) {
  Rng rng(21);
  const std::vector<float> a = random_bf16_values(rng, n, -8, 8), b = random_bf16_values(rng, n, -2, 2);
  const std::vector<float> dout = random_bf16_values(rng, n, -1, 1);
  const std::vector<float> g0 = random_bf16_values(rng, n, -1, 1), g1 = random_bf16_values(rng, n, -1, 1);
  run_case(
      ctx, "bf16_swiglu_residual", to_string_shape({{"n", n}}),
      [&] {
        std::vector<float> sum(n), grad = g0, out(n), dgate = g0, dup = g1;
        cpu::add_forward(sum.data(), a.data(), b.data(), n);
        cpu::add_inplace(grad.data(), a.data(), n);
        cpu::swiglu_forward(out.data(), a.data(), b.data(), n);
        cpu::swiglu_backward(dgate.data(), dup.data(), dout.data(), a.data(), b.data(), n);
        return Outputs{{"add", std::move(sum)},
                       {"add_inplace", std::move(grad)},
                       {"swiglu", std::move(out)},
                       {"dgate", std::move(dgate)},
                       {"dup", std::move(dup)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<uint16_t> d_a(to_bf16(a)), d_b(to_bf16(b)), d_dout(to_bf16(dout)), d_grad(to_bf16(g0));
        DeviceBuffer<uint16_t> d_dgate(to_bf16(g0)), d_dup(to_bf16(g1)), d_sum(n), d_out(n);
        timer.start();
        cuda::add_forward(as_bf16(d_sum), as_bf16(d_a), as_bf16(d_b), n);
        cuda::add_inplace(as_bf16(d_grad), as_bf16(d_a), n);
        cuda::swiglu_forward(as_bf16(d_out), as_bf16(d_a), as_bf16(d_b), n);
        cuda::swiglu_backward(as_bf16(d_dgate), as_bf16(d_dup), as_bf16(d_dout), as_bf16(d_a), as_bf16(d_b), n);
        timer.stop();
        return Outputs{{"add", from_bf16(d_sum.to_host())},
                       {"add_inplace", from_bf16(d_grad.to_host())},
                       {"swiglu", from_bf16(d_out.to_host())},
                       {"dgate", from_bf16(d_dgate.to_host())},
                       {"dup", from_bf16(d_dup.to_host())}};
      },
      {{"add", kBf16}, {"add_inplace", kBf16}, {"swiglu", kBf16}, {"dgate", kBf16}, {"dup", kBf16}});
}

// ---- AdamW with global-norm clipping ------------------------------------------------------------
// The trainer's order (native/model/qwen3.cc): norm = sqrt(sum of squares); if norm > max_norm the
// gradient is scaled by max_norm / (norm + 1e-6); then the AdamW step. The GPU folds the scale into
// the step.
void adamw_case(Context& ctx, int64_t n, int64_t step, bool decay, float grad_range, double max_norm) {
  Rng rng(16);
  const std::vector<float> p0 = random_floats(rng, n, -1, 1), g = random_floats(rng, n, -grad_range, grad_range);
  const std::vector<float> m0 = random_floats(rng, n, -1e-3f, 1e-3f), v0 = random_floats(rng, n, 0, 1e-6f);
  AdamWConfig cfg;
  cfg.lr = 1e-3f;  // large enough that the update shows in float32 (at 1e-6 it hides below an ulp of p)
  auto clip_scale = [&](double sq) {
    const double norm = std::sqrt(sq);
    return norm > max_norm ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
  };
  run_case(
      ctx, "adamw",
      to_string_shape({{"n", n}, {"step", step}, {"decay", decay}}) +
          " max_norm=" + std::to_string(max_norm).substr(0, 4),
      [&] {
        std::vector<float> p = p0, m = m0, v = v0, gs = g;
        const double sq = cpu::sum_squares(g.data(), n);
        const float scale = clip_scale(sq);
        if (scale != 1.0f) cpu::scale_inplace(gs.data(), scale, n);
        cpu::adamw_step(p.data(), gs.data(), m.data(), v.data(), n, cfg, step, decay);
        return Outputs{
            {"sum_squares", {static_cast<float>(sq)}}, {"p", std::move(p)}, {"m", std::move(m)}, {"v", std::move(v)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_p(p0), d_g(g), d_m(m0), d_v(v0);
        timer.start();
        const double sq = cuda::sum_squares(d_g.get(), n);
        cuda::adamw_step(d_p.get(), d_g.get(), d_m.get(), d_v.get(), n, cfg, step, decay, clip_scale(sq));
        timer.stop();
        return Outputs{{"sum_squares", {static_cast<float>(sq)}},
                       {"p", d_p.to_host()},
                       {"m", d_m.to_host()},
                       {"v", d_v.to_host()}};
      },
      // sum_squares: both in double, different orders: float rounding of the result is the only error.
      {{"sum_squares", {1e-6, 0}}, {"p", kUlps}, {"m", kUlps}, {"v", kUlps}});
}

// ---- linear (the tiled GEMM) --------------------------------------------------------------------
// The CPU reference of a linear case: forward, then backward accumulating onto dx0, dW0 (and db0 when b
// is given; empty b and db0 mean no bias).
Outputs cpu_linear(const std::vector<float>& x, const std::vector<float>& W, const std::vector<float>& b,
                   const std::vector<float>& dy, const std::vector<float>& dx0, const std::vector<float>& dW0,
                   const std::vector<float>& db0, int64_t T, int64_t in, int64_t out) {
  const bool bias = !b.empty();
  std::vector<float> y(T * out), dx = dx0, dW = dW0, db = db0;
  cpu::linear_forward(y.data(), x.data(), W.data(), bias ? b.data() : nullptr, T, in, out);
  cpu::linear_backward(dx.data(), dW.data(), bias ? db.data() : nullptr, dy.data(), x.data(), W.data(), T, in, out);
  Outputs o{{"y", std::move(y)}, {"dx", std::move(dx)}, {"dW", std::move(dW)}};
  if (bias) o["db"] = std::move(db);
  return o;
}

void linear_case(Context& ctx, int64_t T, int64_t in, int64_t out, bool bias) {
  Rng rng(17);
  const std::vector<float> x = random_floats(rng, T * in, -1, 1), W = random_floats(rng, out * in, -1, 1);
  const std::vector<float> b = bias ? random_floats(rng, out, -1, 1) : std::vector<float>{};
  const std::vector<float> dy = random_floats(rng, T * out, -1, 1);
  const std::vector<float> dx0 = random_floats(rng, T * in, -1, 1), dW0 = random_floats(rng, out * in, -1, 1);
  const std::vector<float> db0 = bias ? random_floats(rng, out, -1, 1) : std::vector<float>{};
  Tolerances tol{{"y", kGemm}, {"dx", kGemm}, {"dW", kGemm}};
  if (bias) tol["db"] = kRowReduction;
  run_case(
      ctx, "linear", to_string_shape({{"T", T}, {"in", in}, {"out", out}, {"bias", bias}}),
      [&] { return cpu_linear(x, W, b, dy, dx0, dW0, db0, T, in, out); },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_x(x), d_W(W), d_b(b), d_dy(dy), d_dx(dx0), d_dW(dW0), d_db(db0), d_y(T * out);
        timer.start();
        cuda::linear_forward(d_y.get(), d_x.get(), d_W.get(), bias ? d_b.get() : nullptr, T, in, out);
        cuda::linear_backward(d_dx.get(), d_dW.get(), bias ? d_db.get() : nullptr, d_dy.get(), d_x.get(), d_W.get(), T,
                              in, out);
        timer.stop();
        Outputs o{{"y", d_y.to_host()}, {"dx", d_dx.to_host()}, {"dW", d_dW.to_host()}};
        if (bias) o["db"] = d_db.to_host();
        return o;
      },
      tol);
}

// A case whose GPU side cannot run (`why`: a missing library): reported, neither passed nor failed.
void not_run_case(Context& ctx, const std::string& op, const std::string& shape, const std::string& why) {
  std::fprintf(stderr, "%-14s %-60s NOT RUN: %s\n", op.c_str(), shape.c_str(), why.c_str());
  OpResult r;
  r.op = op;
  r.shape = shape;
  r.not_run = why;
  ctx.results.push_back(std::move(r));
}

// ---- linear through cuBLASLt (fp32, and bf16 operands with fp32 accumulation) --------------------
// `missing`: cuBLASLt's load error, when it is not found; the case is then reported as not run.
// bias: fp32 only (the bf16-output form has none).
void linear_blas_case(Context& ctx, const std::string& missing, bool bf16_mode, int64_t T, int64_t in, int64_t out,
                      bool bias = false) {
  const std::string op = bf16_mode ? "linear_cublaslt_bf16" : "linear_cublaslt";
  const std::string shape = to_string_shape({{"T", T}, {"in", in}, {"out", out}, {"bias", bias}});
  if (!missing.empty()) return not_run_case(ctx, op, shape, missing);
  Rng rng(bf16_mode ? 19 : 18);
  // bf16 mode: every operand holds bf16-exact values, so the CPU reference sees the GPU's inputs.
  auto values = [&](int64_t n) { return bf16_mode ? random_bf16_values(rng, n, -1, 1) : random_floats(rng, n, -1, 1); };
  const std::vector<float> x = values(T * in), W = values(out * in), dy = values(T * out), dx0 = values(T * in);
  const std::vector<float> dW0 = random_floats(rng, out * in, -1, 1);  // fp32 in both modes
  const std::vector<float> b = bias ? random_floats(rng, out, -1, 1) : std::vector<float>{};
  const std::vector<float> db0 = bias ? random_floats(rng, out, -1, 1) : std::vector<float>{};
  const Tolerance act = bf16_mode ? kBf16Gemm : kGemm;
  MEDIX_CHECK(!(bias && bf16_mode), "linear_blas_case: the bf16-output form has no bias");
  run_case(
      ctx, op, shape, [&] { return cpu_linear(x, W, b, dy, dx0, dW0, db0, T, in, out); },
      [&](GpuTimer& timer) {
        DeviceBuffer<float> d_dW(dW0);
        if (!bf16_mode) {
          DeviceBuffer<float> d_x(x), d_W(W), d_dy(dy), d_dx(dx0), d_y(T * out), d_b(b), d_db(db0);
          timer.start();
          cuda::linear_forward_blas(d_y.get(), d_x.get(), d_W.get(), bias ? d_b.get() : nullptr, T, in, out);
          cuda::linear_backward_blas(d_dx.get(), d_dW.get(), bias ? d_db.get() : nullptr, d_dy.get(), d_x.get(),
                                     d_W.get(), T, in, out);
          timer.stop();
          Outputs o{{"y", d_y.to_host()}, {"dx", d_dx.to_host()}, {"dW", d_dW.to_host()}};
          if (bias) o["db"] = d_db.to_host();
          return o;
        }
        DeviceBuffer<uint16_t> d_x(to_bf16(x)), d_W(to_bf16(W)), d_dy(to_bf16(dy)), d_dx(to_bf16(dx0)), d_y(T * out);
        timer.start();
        cuda::linear_forward_blas(as_bf16(d_y), as_bf16(d_x), as_bf16(d_W), T, in, out);
        cuda::linear_backward_blas(as_bf16(d_dx), d_dW.get(), as_bf16(d_dy), as_bf16(d_x), as_bf16(d_W), T, in, out);
        timer.stop();
        return Outputs{{"y", from_bf16(d_y.to_host())}, {"dx", from_bf16(d_dx.to_host())}, {"dW", d_dW.to_host()}};
      },
      // db: the tiled path's column sums (in double), compared as a row reduction.
      {{"y", act}, {"dx", act}, {"dW", kGemm}, {"db", kRowReduction}});
}

// The inputs of a log-prob case, drawn in this order from `rng`. Head rows are scaled so the logits
// have a standard deviation of about 1.5, like a trained model's. bf16: hidden and head hold bf16
// values exactly (the GPU's inputs), the rest stays fp32.
LogprobShape logprob_shape(int64_t T, int64_t hidden, int64_t vocab, float temperature, int64_t token_chunk,
                           int64_t vocab_chunk) {
  LogprobShape s;
  s.T = T;
  s.hidden = hidden;
  s.vocab = vocab;
  s.temperature = temperature;
  s.token_chunk = token_chunk;
  s.vocab_chunk = vocab_chunk;
  return s;
}

struct LogprobInputs {
  std::vector<float> h, head, dlogp, dent, dh0, dhead0;
  std::vector<int32_t> targets;
};
LogprobInputs logprob_inputs(Rng& rng, int64_t T, int64_t hidden, int64_t vocab, bool bf16) {
  const float head_range = 2.6f / std::sqrt(static_cast<float>(hidden));
  auto values = [&](int64_t n, float lo, float hi) {
    return bf16 ? random_bf16_values(rng, n, lo, hi) : random_floats(rng, n, lo, hi);
  };
  LogprobInputs in;
  in.h = values(T * hidden, -1, 1);
  in.head = values(vocab * hidden, -head_range, head_range);
  in.targets.resize(T);
  for (int64_t t = 0; t < T; ++t) in.targets[t] = t % 5 == 4 ? -1 : rng.below(vocab);  // -1: no target
  in.dlogp = random_floats(rng, T, -1, 1);
  in.dent = random_floats(rng, T, -1, 1);
  in.dh0 = random_floats(rng, T * hidden, -1e-2f, 1e-2f);
  in.dhead0 = random_floats(rng, vocab * hidden, -1e-4f, 1e-4f);
  return in;
}

// ---- fused log-probs with bf16 hidden states and head, chunked through cuBLASLt ---------------------
void logprob_blas_case(Context& ctx, const std::string& missing, int64_t T, int64_t hidden, int64_t vocab,
                       float temperature, int64_t vocab_chunk) {
  const LogprobShape s = logprob_shape(T, hidden, vocab, temperature, LogprobShape{}.token_chunk, vocab_chunk);
  const std::string op = "logprob_cublaslt_bf16";
  const std::string shape =
      to_string_shape({{"T", T}, {"hidden", hidden}, {"vocab", vocab}, {"vocab_chunk", vocab_chunk}}) +
      " temperature=" + std::to_string(temperature).substr(0, 4);
  if (!missing.empty()) return not_run_case(ctx, op, shape, missing);
  Rng rng(20);
  const LogprobInputs in = logprob_inputs(rng, T, hidden, vocab, true);
  const std::vector<float>&h = in.h, &head = in.head, &dlogp = in.dlogp, &dent = in.dent, &dh0 = in.dh0;
  const std::vector<float>& dhead0 = in.dhead0;
  const std::vector<int32_t>& targets = in.targets;
  run_case(
      ctx, op, shape,
      [&] {
        std::vector<float> logp(T), ent(T), lse(T), dh = dh0, dhead = dhead0;
        cpu::logprob_forward(logp.data(), ent.data(), lse.data(), h.data(), head.data(), targets.data(), s);
        cpu::logprob_backward(dh.data(), dhead.data(), dlogp.data(), dent.data(), h.data(), head.data(), targets.data(),
                              lse.data(), ent.data(), s);
        return Outputs{{"logp", std::move(logp)},
                       {"entropy", std::move(ent)},
                       {"lse", std::move(lse)},
                       {"dhidden", std::move(dh)},
                       {"dhead", std::move(dhead)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<int32_t> d_targets(targets);
        DeviceBuffer<uint16_t> d_h(to_bf16(h)), d_head(to_bf16(head));
        DeviceBuffer<float> d_dlogp(dlogp), d_dent(dent), d_dh(dh0), d_dhead(dhead0), d_logp(T), d_ent(T), d_lse(T);
        timer.start();
        cuda::logprob_forward_blas(d_logp.get(), d_ent.get(), d_lse.get(), as_bf16(d_h), as_bf16(d_head),
                                   d_targets.get(), s);
        cuda::logprob_backward_blas(d_dh.get(), d_dhead.get(), d_dlogp.get(), d_dent.get(), as_bf16(d_h),
                                    as_bf16(d_head), d_targets.get(), d_lse.get(), d_ent.get(), s);
        timer.stop();
        return Outputs{{"logp", d_logp.to_host()},
                       {"entropy", d_ent.to_host()},
                       {"lse", d_lse.to_host()},
                       {"dhidden", d_dh.to_host()},
                       {"dhead", d_dhead.to_host()}};
      },
      // Values: the logits are exact bf16 products summed in fp32 (kGemm). Gradients: dz is rounded to
      // bf16 (the GEMMs' operand), 2^-9 relative per term, so a bf16 ulp of each element plus 2^-8 of
      // the largest for sums that cancel.
      {{"logp", kGemm}, {"entropy", kGemm}, {"lse", kGemm}, {"dhidden", kBf16Grad}, {"dhead", kBf16Grad}});
}

// cuBLASLt's load error, or "" when it opens (tried once, before the cases that need it).
std::string cublaslt_missing() {
  try {
    cuda::load(cuda::Library::CublasLt);
    return "";
  } catch (const std::exception& e) {
    return e.what();
  }
}

// ---- fused log-probs + entropy ------------------------------------------------------------------
void logprob_case(Context& ctx, int64_t T, int64_t hidden, int64_t vocab, float temperature, int64_t token_chunk,
                  int64_t vocab_chunk, bool with_entropy) {
  Rng rng(18);
  const LogprobShape s = logprob_shape(T, hidden, vocab, temperature, token_chunk, vocab_chunk);
  const LogprobInputs in = logprob_inputs(rng, T, hidden, vocab, false);
  const std::vector<float>&h = in.h, &head = in.head, &dlogp = in.dlogp, &dent = in.dent, &dh0 = in.dh0;
  const std::vector<float>& dhead0 = in.dhead0;
  const std::vector<int32_t>& targets = in.targets;
  run_case(
      ctx, "logprob",
      to_string_shape({{"T", T},
                       {"hidden", hidden},
                       {"vocab", vocab},
                       {"token_chunk", token_chunk},
                       {"vocab_chunk", vocab_chunk},
                       {"entropy", with_entropy}}) +
          " temperature=" + std::to_string(temperature).substr(0, 4),
      [&] {
        std::vector<float> logp(T), ent(T), lse(T), dh = dh0, dhead = dhead0;
        cpu::logprob_forward(logp.data(), ent.data(), lse.data(), h.data(), head.data(), targets.data(), s);
        cpu::logprob_backward(dh.data(), dhead.data(), dlogp.data(), with_entropy ? dent.data() : nullptr, h.data(),
                              head.data(), targets.data(), lse.data(), with_entropy ? ent.data() : nullptr, s);
        return Outputs{{"logp", std::move(logp)},
                       {"entropy", std::move(ent)},
                       {"lse", std::move(lse)},
                       {"dhidden", std::move(dh)},
                       {"dhead", std::move(dhead)}};
      },
      [&](GpuTimer& timer) {
        DeviceBuffer<int32_t> d_targets(targets);
        DeviceBuffer<float> d_h(h), d_head(head), d_dlogp(dlogp), d_dent(dent), d_dh(dh0), d_dhead(dhead0);
        DeviceBuffer<float> d_logp(T), d_ent(T), d_lse(T);
        timer.start();
        cuda::logprob_forward(d_logp.get(), d_ent.get(), d_lse.get(), d_h.get(), d_head.get(), d_targets.get(), s);
        cuda::logprob_backward(d_dh.get(), d_dhead.get(), d_dlogp.get(), with_entropy ? d_dent.get() : nullptr,
                               d_h.get(), d_head.get(), d_targets.get(), d_lse.get(),
                               with_entropy ? d_ent.get() : nullptr, s);
        timer.stop();
        return Outputs{{"logp", d_logp.to_host()},
                       {"entropy", d_ent.to_host()},
                       {"lse", d_lse.to_host()},
                       {"dhidden", d_dh.to_host()},
                       {"dhead", d_dhead.to_host()}};
      },
      // Values: GEMM rounding in the logits (kGemm) plus exp/log of the statistics. Gradients: GEMMs
      // over the vocabulary chunks accumulated chunk after chunk; the smallest dhead rows (tokens'
      // non-targets, ~1/V of the largest) are held by the relative term.
      {{"logp", kGemm}, {"entropy", kGemm}, {"lse", kGemm}, {"dhidden", kGemm}, {"dhead", kGemm}});
}

#include "conformance_attention_cases.h"
#include "conformance_bf16_cases.h"
#include "conformance_decode_cases.h"
#include "conformance_model_cases.h"
#include "conformance_moe_cases.h"
#include "conformance_sampling_cases.h"
#include "conformance_vision_cases.h"

// ---- the harness itself must be able to fail ----------------------------------------------------
void harness_self_test(Context& ctx) {
  OpResult r;
  r.op = "harness_self_test";
  r.shape = "compare() rejects a perturbed element, a NaN and a size mismatch; accepts equal outputs; bf16 rounding";
  Rng rng(19);
  const std::vector<float> ref = random_floats(rng, 1000, -1, 1);
  std::vector<float> off = ref, nan = ref;
  off[517] += 1e-3f;
  nan[3] = NAN;
  // bf16 rounding: nearest even, ties to even, exact round trip of representable values.
  const bool bf16_ok = bf16_value(bf16_bits(1.0f + 0x1p-8f)) == 1.0f &&
                       bf16_value(bf16_bits(1.0f + 0x1p-8f + 0x1p-16f)) == 1.0f + 0x1p-7f &&
                       bf16_value(bf16_bits(1.0f + 3 * 0x1p-8f)) == 1.0f + 0x1p-6f &&
                       bf16_value(bf16_bits(-2.5f)) == -2.5f;
  const bool ok = bf16_ok && compare("equal", ref, ref, kExact).pass && !compare("off", off, ref, kGemm).pass &&
                  !compare("nan", nan, ref, kGemm).pass && !compare("size", std::vector<float>(999), ref, kGemm).pass;
  if (!ok) r.error = "compare() accepted a wrong output or rejected an exact one";
  std::fprintf(stderr, "%-14s %-60s %s\n", r.op.c_str(), "", ok ? "ok" : "FAIL");
  ctx.results.push_back(std::move(r));
}

// ---- the memory pool gives back what it keeps when an allocation outside it needs it ------------
// The backend's pool keeps its peak (release threshold at max). Here it keeps 60% of the free memory
// after a release; an allocation outside the pool (cudaMalloc, as the cuBLASLt workspace is) of that
// same size then fits only if device_alloc trims the pool when the first try fails (runtime.cu).
void memory_pool_case(Context& ctx) {
  run_case(
      ctx, "memory_pool", "keeps 60% of free memory, then a cudaMalloc of the same size",
      [] {
        return Outputs{{"allocated", {1.0f}}};
      },
      [](GpuTimer& timer) {
        int device = 0;
        cuda_ok(cudaGetDevice(&device), "cudaGetDevice");
        cudaMemPool_t pool = nullptr;
        cuda_ok(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
        uint64_t keep = UINT64_MAX;
        cuda_ok(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep), "release threshold");
        size_t free0 = 0, total = 0, free1 = 0;
        cuda_ok(cudaMemGetInfo(&free0, &total), "cudaMemGetInfo");
        const size_t bytes = free0 / 10 * 6;
        timer.start();
        cudaFreeAsync(cuda::device_alloc(bytes, 0, "memory_pool case (pooled)"), 0);
        cuda_ok(cudaStreamSynchronize(0), "cudaStreamSynchronize");
        cuda_ok(cudaMemGetInfo(&free1, &total), "cudaMemGetInfo");
        // The case's premise: without the trim, the pool's memory is not free for cudaMalloc.
        if (free1 + bytes / 2 > free0) fail("memory_pool case: the pool did not keep the released memory");
        void* outside = cuda::device_alloc(bytes, 0, "memory_pool case (cudaMalloc)", false);
        timer.stop();
        uint64_t reserved = 0;
        cuda_ok(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved), "pool reserved");
        cuda_ok(cudaFree(outside), "cudaFree");
        // device_alloc's trim did it, not the driver on its own: the pool no longer holds the released memory.
        if (reserved >= bytes / 2) fail("memory_pool case: the allocation fit but the pool still holds ", reserved);
        return Outputs{{"allocated", {1.0f}}};
      },
      {{"allocated", kExact}});
}

void run_all(Context& ctx) {
  const bool big = !ctx.opt.tiny_only;
  // Qwen3-1.7B-like: hidden 2048, 16 query heads / 8 kv heads of 128, MLP 6144, vocab 151,936.
  if (wanted(ctx, "embedding")) {
    embedding_case(ctx, 50, 24, 40);
    if (big) embedding_case(ctx, 151936, 2048, 2048);
  }
  if (wanted(ctx, "rmsnorm")) {
    rmsnorm_case(ctx, "hidden", 5, 24);
    rmsnorm_case(ctx, "q/k head", 7 * 3, 16);
    if (big) {
      rmsnorm_case(ctx, "hidden", 2048, 2048);
      rmsnorm_case(ctx, "q/k head", 2048 * 16, 128);
    }
  }
  if (wanted(ctx, "rope")) {
    rope_case(ctx, "standard", 7, 3, 16, 10000.0f, {}, false);
    rope_case(ctx, "mrope interleaved", 7, 3, 16, 10000.0f, {4, 2, 2}, true);
    rope_case(ctx, "mrope contiguous", 7, 3, 16, 10000.0f, {4, 2, 2}, false);
    if (big) {
      rope_case(ctx, "standard", 2048, 16, 128, 1000000.0f, {}, false);
      rope_case(ctx, "mrope interleaved", 2048, 16, 128, 5000000.0f, {24, 20, 20}, true);
      rope_case(ctx, "mrope contiguous", 2048, 8, 128, 1000000.0f, {16, 24, 24}, false);
    }
  }
  if (wanted(ctx, "swiglu")) {
    swiglu_case(ctx, 37);
    if (big) swiglu_case(ctx, 2048 * 6144);
  }
  if (wanted(ctx, "residual")) {
    residual_case(ctx, 37);
    if (big) residual_case(ctx, 2048 * 2048);
  }
  if (wanted(ctx, "bf16_swiglu_residual")) {
    bf16_elementwise_case(ctx, 37);
    if (big) bf16_elementwise_case(ctx, 2048 * 6144);
  }
  if (wanted(ctx, "adamw")) {
    adamw_case(ctx, 1000, 1, false, 1e-3f, 1.0);  // norm below max_norm: no clipping
    adamw_case(ctx, 1000, 2, true, 1.0f, 1.0);    // clipped
    if (big) adamw_case(ctx, 4 * 2048 * 2048 + 17, 3, true, 1.0f, 1.0);
  }
  if (wanted(ctx, "linear")) {
    linear_case(ctx, 5, 7, 9, true);
    linear_case(ctx, 70, 33, 65, false);
    if (big) linear_case(ctx, 512, 2048, 6144, false);
  }
  const std::string missing = cublaslt_missing();  // the cuBLASLt cases are reported as not run without it
  if (wanted(ctx, "linear_cublaslt") || wanted(ctx, "linear_cublaslt_bf16")) {
    if (wanted(ctx, "linear_cublaslt")) {
      linear_blas_case(ctx, missing, false, 5, 7, 9);
      linear_blas_case(ctx, missing, false, 70, 33, 65);
      linear_blas_case(ctx, missing, false, 70, 64, 96, true);
      if (big) {
        linear_blas_case(ctx, missing, false, 512, 2048, 6144);
        linear_blas_case(ctx, missing, false, 4096, 1024, 4096, true);  // a Qwen3-VL-2B vision block's fc1
      }
    }
    if (wanted(ctx, "linear_cublaslt_bf16")) {
      linear_blas_case(ctx, missing, true, 16, 24, 40);
      if (big) linear_blas_case(ctx, missing, true, 2048, 2048, 6144);
    }
  }
  bf16_cases(ctx, big, missing);
  if (wanted(ctx, "attention")) attention_cases(ctx, big);
  if (wanted(ctx, "attention_bf16_flash")) attention_bf16_cases(ctx, big);
  decode_cases(ctx, big);
  vision_cases(ctx, big);
  model_cases(ctx);
  moe_cases(ctx, big, missing);
  sampling_cases(ctx, big);
  if (wanted(ctx, "memory_pool")) memory_pool_case(ctx);
  if (wanted(ctx, "logprob")) {
    logprob_case(ctx, 9, 16, 100, 0.7f, 4, 32, true);
    logprob_case(ctx, 9, 16, 100, 1.0f, 1024, 2048, false);
    logprob_case(ctx, 9, 16, 100, 0.8f, 0, 0, true);  // chunks of 0: the defaults, as the model asks
    if (big) logprob_case(ctx, 128, 2048, 151936, 0.9f, 1024, 2048, true);
  }
  if (wanted(ctx, "logprob_cublaslt_bf16")) {
    logprob_blas_case(ctx, missing, 9, 16, 300, 0.7f, 128);  // three chunks, the last one partial
    if (big) logprob_blas_case(ctx, missing, 128, 2048, 151936, 0.9f, 4096);
  }
}

std::string summary_json(const Context& ctx, const std::string& device, double total_ms) {
  std::ostringstream os;
  int passed = 0, failed = 0, cpu_only = 0, not_run = 0;
  os << "{\"conformance\":\"cuda\",\"device\":\"" << json_escape(device)
     << "\",\"gpu_checks_ran\":" << (ctx.have_gpu ? "true" : "false") << ",\"shapes\":\""
     << (ctx.opt.tiny_only ? "tiny" : "tiny+qwen3") << "\",\"ops\":[";
  for (size_t i = 0; i < ctx.results.size(); ++i) {
    const OpResult& r = ctx.results[i];
    const bool pass = r.pass();
    const bool graded = r.gpu_ran || !r.error.empty() || r.op == "harness_self_test";
    if (!r.not_run.empty())
      ++not_run;
    else if (!graded)
      ++cpu_only;
    else if (pass)
      ++passed;
    else
      ++failed;
    double max_abs = 0, max_rel = 0, worst = 0;
    for (const OutputCheck& c : r.checks) {
      max_abs = std::max(max_abs, c.max_abs);
      max_rel = std::max(max_rel, c.max_rel);
      worst = std::max(worst, c.worst);
    }
    os << (i ? "," : "") << "{\"op\":\"" << r.op << "\",\"shape\":\"" << json_escape(r.shape) << "\",\"status\":\""
       << (!r.not_run.empty() ? "not_run"
           : !graded          ? "cpu_only"
           : pass             ? "pass"
                              : "fail")
       << "\",\"max_abs\":" << json_number(max_abs) << ",\"max_rel\":" << json_number(max_rel)
       << ",\"worst_over_allowed\":" << json_number(worst)
       << ",\"deterministic\":" << (r.deterministic ? "true" : "false") << ",\"gpu_ms\":" << json_number(r.gpu_ms)
       << ",\"cpu_ms\":" << json_number(r.cpu_ms);
    if (!r.error.empty()) os << ",\"error\":\"" << json_escape(r.error) << "\"";
    if (!r.not_run.empty()) os << ",\"not_run\":\"" << json_escape(r.not_run) << "\"";
    os << ",\"outputs\":{";
    for (size_t j = 0; j < r.checks.size(); ++j) {
      const OutputCheck& c = r.checks[j];
      os << (j ? "," : "") << "\"" << c.name << "\":{\"max_abs\":" << json_number(c.max_abs)
         << ",\"max_rel\":" << json_number(c.max_rel) << ",\"rtol\":" << json_number(c.tol.rtol)
         << ",\"atol\":" << json_number(c.tol.atol) << ",\"pass\":" << (c.pass ? "true" : "false") << "}";
    }
    os << "}}";
  }
  os << "],\"passed\":" << passed << ",\"failed\":" << failed << ",\"cpu_only\":" << cpu_only
     << ",\"not_run\":" << not_run << ",\"total_ms\":" << json_number(total_ms) << "}";
  return os.str();
}

}  // namespace
}  // namespace medix::conformance

int main(int argc, char** argv) {
  using namespace medix::conformance;
  Context ctx;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--tiny")
      ctx.opt.tiny_only = true;
    else if (a == "--all-shapes")
      ctx.opt.all_shapes = true;
    else if (a == "--require-gpu")
      ctx.opt.require_gpu = true;
    else if (a == "--only" && i + 1 < argc)
      ctx.opt.only = argv[++i];
    else {
      std::fprintf(stderr,
                   "cuda_conformance: unknown argument '%s' (use --tiny, --all-shapes, --require-gpu, --only OP)\n",
                   a.c_str());
      return 2;
    }
  }
  const auto t0 = std::chrono::steady_clock::now();
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  std::string device;
  if (err != cudaSuccess || count == 0) {
    device = std::string("none: ") + (err != cudaSuccess ? cudaGetErrorString(err) : "no CUDA device");
    std::fprintf(stderr,
                 "cuda_conformance: NO CUDA DEVICE (%s). Running the CPU references (%s shapes) and the "
                 "harness self-test only; no GPU check ran.\n",
                 device.c_str(), ctx.opt.all_shapes ? "all" : "tiny");
    if (!ctx.opt.all_shapes) ctx.opt.tiny_only = true;
  } else {
    cudaDeviceProp prop{};
    medix::conformance::cuda_ok(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties");
    int driver = 0, runtime = 0;
    cudaDriverGetVersion(&driver);
    cudaRuntimeGetVersion(&runtime);
    device = std::string(prop.name) + " sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + " driver " +
             std::to_string(driver) + " runtime " + std::to_string(runtime);
    ctx.have_gpu = true;
    std::fprintf(stderr, "cuda_conformance: device 0: %s; %d CPU threads for the references\n", device.c_str(),
                 medix::num_threads());
  }
  harness_self_test(ctx);
  run_all(ctx);
  const std::string json = summary_json(ctx, device, ms_since(t0));
  std::printf("%s\n", json.c_str());
  bool any_fail = false;
  for (const OpResult& r : ctx.results) any_fail = any_fail || !r.pass();
  if (any_fail) return 1;
  if (!ctx.have_gpu && ctx.opt.require_gpu) {
    std::fprintf(stderr, "cuda_conformance: --require-gpu given and no usable CUDA device\n");
    return 2;
  }
  return 0;
}
