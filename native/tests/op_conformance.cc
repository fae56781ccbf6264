// Backend conformance of the op table (native/core/op_registry.h), built by
// scripts/build-op-conformance.sh. For every registered op family, at a tiny shape and at a shape with
// Qwen3 / Qwen3-VL dimensions, it
//   - runs forward (and backward) on every backend present and compares each output with the CPU
//     backend's (conformance_compare.h's rule; bit-identity for the CPU itself, run twice). One backend
//     is always present: "cuda-guard", the device-memory guard (guard_backend.h), CUDA's Backend
//     contract over the CPU ops. On it each op takes run_call's device path (arguments uploaded, run,
//     downloaded) and every pointer its table entry passes is checked as backend or host memory, so
//     those paths are tested without a GPU; its outputs must equal the CPU's bit for bit, and any
//     contract violation (printed on stderr) fails the case;
//   - checks the CPU backward against central finite differences of the forward at the tiny shape;
//   - checks that every registered backend op (core/backend_op.h) was run by some entry, or is listed in
//     check_coverage with where it is tested instead.
// Built with CUDA (scripts/build-cuda-check.sh: build/cuda-check/op_conformance, MEDIX_OP_CONFORMANCE_CUDA),
// the CUDA backend (native/cuda/cuda_backend.h) is a backend too where a device exists: every entry whose
// backend ops the kernels registered runs through run_call's device path on the real kernels, and its outputs are
// held to the CPU's within cuda_tolerance below (--require-cuda: no device is a failure). This is the
// table-driven half of CUDA's verification; native/tests/cuda_conformance.cu adds the kernels' own
// paths (cuBLASLt, tensor-core attention, whole models) with their bounds.
// Inputs come from the declarations alone: lengths from the shape rules, ids and offsets from their
// value rules, so a new entry is covered without touching this file; only its shapes are listed here.
//
// The finite-difference check: with random weights r_o on each forward output o whose gradient the
// backward takes ("d" + o), L = sum_o <r_o, o>. For every forward input x whose gradient the backward
// returns ("dx", or "dX" for input "X"), a few sampled elements get dL/dx_i = (L(x_i + h) - L(x_i - h))
// / 2h, L summed in double, h = 1e-3 (f32 inputs); each must match the backward's gradient within
// 5e-3 relative to max(|grad_i|, 0.1 * max |grad|): the f32 forward's rounding (about 1e-7 relative to
// L's terms) over 2h bounds the quotient's error near 1e-4, and the O(h^2) truncation is smaller still
// (the ops seen stay under 2e-3); a gradient 1% off fails.
//
// Entries in bf16 (bf16 weights or KV cache; f32 activations and sums) run at the same shapes against
// the f32 CPU reference on the unrounded inputs, forward and backward; see "bf16 entries" below for
// the tolerances, derived from bf16's unit roundoff and the reduction lengths.
//
// Prints one line per op and shape, a summary line, and exits 1 when any check fails.
#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "conformance_compare.h"
#include "core/backend_op.h"
#include "core/bf16.h"
#include "core/error.h"
#include "core/op_registry.h"
#include "ops/moe.h"
#include "guard_backend.h"
#ifdef MEDIX_OP_CONFORMANCE_CUDA
#include "cuda/cuda_backend.h"
#endif

namespace medix {
namespace {

using conformance::Rng;

// One shape of one op: options (incl. T where an input's length needs it) and the length of each
// input whose shape is free ("").
struct Case {
  const char* label;
  Attrs attrs;
  std::map<std::string, int64_t> free = {};
};

Attrs attrs(std::map<std::string, double> num, std::map<std::string, std::vector<int64_t>> lists = {}) {
  Attrs a;
  a.num = std::move(num);
  a.lists = std::move(lists);
  return a;
}

// The shapes each family runs at: tiny (finite differences), then Qwen3-like dimensions (0.6B/1.7B
// hidden and heads, the VL tower's widths; vocabularies and expert counts cut so a 2-core CI runs it).
std::map<std::string, std::vector<Case>> cases() {
  return {
      {"embedding",
       {{"tiny", attrs({{"vocab", 11}, {"dim", 5}}), {{"ids", 7}}},
        {"qwen3 dim 1024, vocab 8192", attrs({{"vocab", 8192}, {"dim", 1024}}), {{"ids", 64}}}}},
      {"rmsnorm",
       {{"tiny", attrs({{"rows", 3}, {"dim", 5}, {"eps", 1e-6}})},
        {"qwen3 hidden 1024", attrs({{"rows", 64}, {"dim", 1024}, {"eps", 1e-6}})},
        {"qwen3 q-norm 16x128", attrs({{"rows", 64 * 16}, {"dim", 128}, {"eps", 1e-6}})}}},
      {"linear",
       {{"tiny, bias", attrs({{"T", 3}, {"in", 4}, {"out", 5}, {"bias", 1}})},
        {"qwen3 1024->3072", attrs({{"T", 32}, {"in", 1024}, {"out", 3072}})}}},
      {"rope",
       {{"tiny", attrs({{"T", 4}, {"heads", 2}, {"headDim", 8}, {"theta", 10000}})},
        {"tiny multi-section interleaved",
         attrs({{"T", 4}, {"heads", 2}, {"headDim", 16}, {"theta", 5e6}, {"interleaved", 1}},
               {{"sections", {2, 3, 3}}})},
        {"qwen3 16x128", attrs({{"T", 64}, {"heads", 16}, {"headDim", 128}, {"theta", 1e6}})},
        {"qwen3-vl 16x128 sections 24/20/20",
         attrs({{"T", 32}, {"heads", 16}, {"headDim", 128}, {"theta", 5e6}, {"interleaved", 1}},
               {{"sections", {24, 20, 20}}})}}},
      {"swiglu", {{"tiny", attrs({}), {{"gate", 10}}}, {"qwen3 64x3072", attrs({}), {{"gate", 64 * 3072}}}}},
      {"add", {{"tiny", attrs({}), {{"a", 10}}}, {"qwen3 64x1024", attrs({}), {{"a", 64 * 1024}}}}},
      {"add_inplace", {{"tiny", attrs({}), {{"dst", 10}}}, {"qwen3 64x1024", attrs({}), {{"dst", 64 * 1024}}}}},
      {"attention",
       {{"tiny GQA 4/2", attrs({{"T", 5}, {"heads", 4}, {"kvHeads", 2}, {"headDim", 3}})},
        {"tiny bidirectional", attrs({{"T", 5}, {"heads", 2}, {"kvHeads", 2}, {"headDim", 4}, {"causal", 0}})},
        {"qwen3 GQA 16/8 x128", attrs({{"T", 48}, {"heads", 16}, {"kvHeads", 8}, {"headDim", 128}})}}},
      {"kv_cache_write",
       {{"tiny", attrs({{"kvDim", 6}, {"T", 3}, {"nSlots", 8}}), {{"kCache", 8 * 6}, {"k", 3 * 6}}},
        {"qwen3 kv 8x128, 16 tokens",
         attrs({{"kvDim", 1024}, {"T", 16}, {"nSlots", 256}}),
         {{"kCache", 256 * 1024}, {"k", 16 * 1024}}}}},
      // Derived options (blocks, seqs, keysBound) are listed so the index inputs can be drawn in range.
      {"paged_attention",
       {{"tiny GQA 4/2",
         attrs({{"T", 5},
                {"heads", 4},
                {"kvHeads", 2},
                {"headDim", 3},
                {"blockSize", 2},
                {"maxBlocks", 3},
                {"blocks", 5},
                {"seqs", 2},
                {"keysBound", 7}}),
         {{"kCache", 5 * 2 * 2 * 3}, {"blockTables", 2 * 3}}},
        {"qwen3 GQA 16/8 x128, 128 keys",
         attrs({{"T", 8},
                {"heads", 16},
                {"kvHeads", 8},
                {"headDim", 128},
                {"blockSize", 16},
                {"maxBlocks", 8},
                {"blocks", 32},
                {"seqs", 4},
                {"keysBound", 129}}),
         {{"kCache", 32 * 16 * 8 * 128}, {"blockTables", 4 * 8}}}}},
      {"logprob",
       {{"tiny, entropy",
         attrs({{"T", 5}, {"hidden", 6}, {"vocab", 13}, {"entropy", 1}, {"tokenChunk", 2}, {"vocabChunk", 4}}),
         {{"targets", 5}}},
        {"qwen3 hidden 1024, vocab 8192",
         attrs({{"T", 16}, {"hidden", 1024}, {"vocab", 8192}, {"entropy", 1}}),
         {{"targets", 16}}}}},
      {"logprob_naive",
       {{"tiny, entropy", attrs({{"T", 5}, {"hidden", 6}, {"vocab", 13}, {"entropy", 1}}), {{"targets", 5}}}}},
      {"adamw",
       {{"tiny", attrs({{"lr", 1e-3}, {"step", 3}}), {{"p", 10}}},
        {"1M", attrs({{"lr", 1e-6}, {"step", 100}, {"weightDecay", 0.1}}), {{"p", 1 << 20}}}}},
      {"sum_squares", {{"tiny", attrs({}), {{"g", 10}}}, {"1M", attrs({}), {{"g", 1 << 20}}}}},
      {"scale", {{"tiny", attrs({{"s", 0.5}}), {{"g", 10}}}, {"1M", attrs({{"s", 0.25}}), {{"g", 1 << 20}}}}},
      {"layernorm",
       {{"tiny", attrs({{"rows", 3}, {"dim", 5}, {"eps", 1e-6}})},
        {"qwen3-vl tower 1024", attrs({{"rows", 64}, {"dim", 1024}, {"eps", 1e-6}})}}},
      {"gelu",
       {{"tiny tanh", attrs({{"kind", 0}}), {{"x", 10}}},
        {"tiny erf", attrs({{"kind", 1}}), {{"x", 10}}},
        {"qwen3-vl mlp 64x4096", attrs({{"kind", 0}}), {{"x", 64 * 4096}}}}},
      {"vision_rope",
       {{"tiny", attrs({{"T", 4}, {"heads", 2}, {"headDim", 8}})},
        {"qwen3-vl 16x64", attrs({{"T", 64}, {"heads", 16}, {"headDim", 64}})}}},
      {"vision_pos_embed",
       {{"tiny two images", attrs({{"merge", 2}, {"side", 4}, {"dim", 3}}), {}},
        {"qwen3-vl side 48, 1024", attrs({{"merge", 2}, {"side", 48}, {"dim", 1024}}), {}}}},
      {"moe_block",
       {{"tiny 4 experts top-2",
         attrs({{"tokens", 5}, {"hidden", 4}, {"intermediate", 3}, {"experts", 4}, {"topK", 2}})},
        {"qwen3-moe routing 32 experts top-4",
         attrs({{"tokens", 16}, {"hidden", 256}, {"intermediate", 128}, {"experts", 32}, {"topK", 4}})}}},
      {"moe_experts",
       {{"tiny 4 experts top-2",
         attrs({{"tokens", 5}, {"hidden", 4}, {"intermediate", 3}, {"experts", 4}, {"topK", 2}})},
        {"tiny 6 experts top-3, weights not renormalised",
         attrs({{"tokens", 7}, {"hidden", 5}, {"intermediate", 4}, {"experts", 6}, {"topK", 3}, {"normTopk", 0}})},
        {"qwen3-moe 32 experts top-4",
         attrs({{"tokens", 16}, {"hidden", 256}, {"intermediate", 128}, {"experts", 32}, {"topK", 4}})}}},
  };
}

// Grids are list options; the cases above that need them get them here.
void add_lists(const std::string& family, Case& c) {
  if (family != "vision_pos_embed") return;
  if (std::string(c.label).rfind("tiny", 0) == 0)
    c.attrs.lists["grids"] = {1, 2, 4, 1, 4, 2};
  else
    c.attrs.lists["grids"] = {1, 16, 16, 2, 8, 12};
}

// Host memory of every argument of one call.
struct Host {
  std::map<std::string, std::vector<float>> data;     // i32 arguments stored bit-for-bit in float slots
  std::map<std::string, std::vector<uint16_t>> bf16;  // bf16 arguments (bf16 entries)
  // The arguments of pass `p` among them, with its dtypes.
  Tensors view(const OpPass& p) {
    Tensors t;
    for (const ArgSpec& s : p.args) {
      if (s.dtype == DType::BF16 && bf16.count(s.name))
        t.t[s.name] = {bf16[s.name].data(), static_cast<int64_t>(bf16[s.name].size()), s.dtype};
      else if (s.dtype != DType::BF16 && data.count(s.name))
        t.t[s.name] = {data[s.name].data(), static_cast<int64_t>(data[s.name].size()), s.dtype};
    }
    return t;
  }
};

std::vector<float> ints_as_floats(const std::vector<int32_t>& v) {
  std::vector<float> out(v.size());
  std::memcpy(out.data(), v.data(), sizeof(int32_t) * v.size());
  return out;
}

// Inputs of the forward pass from the declarations: lengths from shapes, values from value rules.
void make_inputs(const OpPass& p, const Case& c, Rng& rng, Host& h) {
  std::map<std::string, int64_t> lengths = c.free;
  for (const ArgSpec& s : p.args) {
    if (s.role == Role::Out) continue;
    // Optional inputs are given at the tiny shape (so their gradient is checked), left out at the large
    // one (Qwen3's linear layers have no bias).
    if (s.optional && std::string(c.label).rfind("tiny", 0) != 0) continue;
    std::string desc;
    int64_t n = c.free.count(s.name) ? c.free.at(s.name) : arg_length(s, c.attrs, lengths, &desc);
    if (s.values == Values::Offsets) {
      const int64_t T = c.attrs.i(s.bound);
      h.data[s.name] =
          ints_as_floats({0, static_cast<int32_t>(T / 3), static_cast<int32_t>(T / 3 + 1), static_cast<int32_t>(T)});
      lengths[s.name] = 4;
      continue;
    }
    MEDIX_CHECK(n >= 0, "op_conformance: no length for ", p.js_name, " input ", s.name);
    lengths[s.name] = n;
    if (s.dtype == DType::I32) {
      std::vector<int32_t> v(static_cast<size_t>(n));
      const int64_t lo = s.values == Values::Ids ? s.lo : 0;
      const int64_t hi = s.values == Values::Ids ? c.attrs.i(s.bound) : 16;
      for (int32_t& x : v) x = static_cast<int32_t>(lo + rng.below(hi - lo));
      h.data[s.name] = ints_as_floats(v);
    } else if (s.values == Values::NonNegative) {
      h.data[s.name] = conformance::random_floats(rng, n, 0.0f, 1.0f);
    } else {
      h.data[s.name] = conformance::random_floats(rng, n, -1.0f, 1.0f);
    }
  }
}

// Runs one pass on `be`: checks it, adds zeroed outputs, runs. Returns the host arguments after.
Host run(const OpDef& d, const OpPass& p, Backend& be, const Attrs& given, Host in) {
  Attrs a = given;
  Tensors view = in.view(p);
  const std::map<std::string, int64_t> lengths = check_call(p, a, view);
  for (const ArgSpec& s : p.args) {
    if (s.role != Role::Out || !lengths.count(s.name)) continue;
    if (s.dtype == DType::BF16)
      in.bf16[s.name].assign(static_cast<size_t>(lengths.at(s.name)), 0);
    else
      in.data[s.name].assign(static_cast<size_t>(lengths.at(s.name)), 0);
  }
  view = in.view(p);
  const double value = run_call(d, p, be, a, view);
  in.data["(value)"] = {static_cast<float>(value)};
  return in;
}

struct Tally {
  int ops = 0, cases = 0, checks = 0, failures = 0;
};

testing::GuardBackend& guard() {
  static testing::GuardBackend g;
  return g;
}

// Why the CUDA backend is not among backends() (empty when it is): not built in, or no device here.
std::string cuda_absent = "not built in (scripts/build-cuda-check.sh builds this program with it)";

// Every backend this program was built with that can run here; the CPU's first.
const std::vector<Backend*>& backends() {
  static const std::vector<Backend*> list = [] {
    std::vector<Backend*> b{&cpu_backend(), &guard()};
#ifdef MEDIX_OP_CONFORMANCE_CUDA
    try {
      b.push_back(&cuda::backend());  // throws when there is no device
      cuda_absent.clear();
    } catch (const std::exception& e) {
      cuda_absent = e.what();
    }
#endif
    return b;
  }();
  return list;
}

// How far the CUDA backend's outputs may be from the CPU's (conformance_compare.h's rule), as
// cuda_conformance.cu holds the same kernels: products and reductions in another order of fp32 sums
// (kGemm there), and attention's gradients, sums of up to T products of differences (kAttentionGrad).
// bf16 entries run the tiled kernel (see CudaTiled), whose arithmetic is the CPU reference's, so kGemm.
conformance::Tolerance cuda_tolerance(const OpDef& d, const OpPass& p) {
  const bool attention_grad = std::string(d.family) == "attention" && &p == &d.backward;
  return attention_grad ? conformance::Tolerance{1e-3, 1e-5} : conformance::Tolerance{1e-4, 1e-5};
}

// A bf16 entry on the CUDA backend runs the tiled product (MEDIX_CUDA_LINEAR=tiled, read at each call):
// f32 activations against widened bf16 weights, as the CPU's bf16 entries. cuBLASLt's bf16 forms also
// round the activations; cuda_conformance's *_cublaslt cases hold them to that bound.
struct CudaTiled {
  std::string saved;
  bool had = false;
  CudaTiled() {
    if (const char* v = std::getenv("MEDIX_CUDA_LINEAR")) had = true, saved = v;
    setenv("MEDIX_CUDA_LINEAR", "tiled", 1);
  }
  ~CudaTiled() {
    if (had)
      setenv("MEDIX_CUDA_LINEAR", saved.c_str(), 1);
    else
      unsetenv("MEDIX_CUDA_LINEAR");
  }
};

// The guard answers to "cuda" (it is held to CUDA's contract and op support), so it is printed apart.
std::string label(const Backend* be) { return be == &guard() ? "cuda-guard" : be->name(); }

std::string upper_first(std::string s) {
  if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
  return s;
}

// Compares the outputs (and in/out arguments) of `got` with the CPU's `ref`.
bool compare_outputs(const OpPass& p, const Host& got, const Host& ref, bool bits, std::string* why, Tally& tally,
                     conformance::Tolerance tol = {1e-4, 1e-5}) {
  bool ok = true;
  for (const ArgSpec& s : p.args) {
    if (s.role != Role::In && s.dtype == DType::BF16 && ref.bf16.count(s.name)) {
      ++tally.checks;
      if (got.bf16.at(s.name) != ref.bf16.at(s.name)) {
        ok = false;
        *why += std::string(" ") + s.name + " not bit-identical;";
      }
      continue;
    }
    if (s.role == Role::In || !ref.data.count(s.name)) continue;
    ++tally.checks;
    const std::vector<float>& r = ref.data.at(s.name);
    const std::vector<float>& g = got.data.at(s.name);
    if (bits || s.dtype == DType::I32) {
      if (std::memcmp(r.data(), g.data(), sizeof(float) * r.size()) != 0) {
        ok = false;
        *why += std::string(" ") + s.name + " not bit-identical;";
      }
      continue;
    }
    const auto c = conformance::compare(s.name, g, r, tol);
    if (!c.pass) {
      ok = false;
      *why += std::string(" ") + s.name + ": " + c.note + ";";
    }
  }
  return ok;
}

// Runs a pass on every backend but the CPU and compares its outputs with the CPU's `ref`: within tolerance,
// or bit for bit on the guard (it runs the CPU's code), where a contract violation also fails. Appends the
// backends that ran it to `on`, and " <backend>: lacks <ops>;" for the others to `missing` (when given: a
// family's backward is supported where its forward is). A backend supports an entry when it registered every
// backend op the entry runs; today all do but CUDA's for logprob_naive, the unfused head kept as the fused
// one's CPU reference (the guard runs the CPU's ops, so it has it).
bool check_other_backends(const OpDef& d, const OpPass& p, const Attrs& a, const Host& in, const Host& ref,
                          std::string* on, std::string* missing, std::string* why, Tally& tally) {
  bool ok = true;
  for (Backend* be : backends()) {
    if (be == &cpu_backend()) continue;
    if (!supports(be->ops(), d)) {
      if (missing) *missing += " " + label(be) + ": lacks " + missing_ops(be->ops(), d) + ";";
      continue;
    }
    const int violations = guard().violations;
    const bool bits = be == &guard();
    ok = compare_outputs(p, run(d, p, *be, a, in), ref, bits, why, tally,
                         bits ? conformance::Tolerance{} : cuda_tolerance(d, p)) &&
         ok;
    if (guard().violations != violations) {
      ok = false;
      *why += " " + label(be) + ": the Backend contract was violated (see stderr);";
    }
    *on += ", " + label(be);
  }
  return ok;
}

// L = sum over the forward outputs with a gradient input of <r_o, o>, in double.
double objective(const Host& fwd, const std::map<std::string, std::vector<float>>& weights) {
  double L = 0;
  for (const auto& [name, r] : weights) {
    const std::vector<float>& o = fwd.data.at(name);
    for (size_t i = 0; i < o.size(); ++i) L += static_cast<double>(r[i]) * o[i];
  }
  return L;
}

// Inputs of the backward pass: the forward's inputs and outputs by name, and for each forward output o
// whose gradient "d" + o the backward takes, random weights r_o (also returned in `weights`).
Host backward_inputs(const OpDef& d, const Host& in, const Host& fwd, Rng& rng,
                     std::map<std::string, std::vector<float>>* weights) {
  Host b;
  for (const ArgSpec& s : d.backward.args) {
    if (s.role == Role::Out) continue;
    const std::string name = s.name;
    if (in.data.count(name)) {
      b.data[name] = in.data.at(name);
    } else if (fwd.data.count(name)) {
      b.data[name] = fwd.data.at(name);
    } else if (name.size() > 1 && name[0] == 'd' && fwd.data.count(name.substr(1))) {
      const int64_t n = static_cast<int64_t>(fwd.data.at(name.substr(1)).size());
      (*weights)[name.substr(1)] = b.data[name] = conformance::random_floats(rng, n, -1.0f, 1.0f);
    }
  }
  return b;
}

// The finite-difference check of the CPU backward; returns the worst error ratio (pass <= 1).
double check_gradients(const OpDef& d, const Case& c, const Host& in, const Host& fwd, Rng& rng, std::string* why,
                       Tally& tally) {
  Backend& cpu = cpu_backend();
  std::map<std::string, std::vector<float>> weights;
  const Host bwd_in = backward_inputs(d, in, fwd, rng, &weights);
  const Host grads = run(d, d.backward, cpu, c.attrs, bwd_in);
  double worst = 0;
  for (const ArgSpec& s : d.forward.args) {
    if (s.role != Role::In || s.dtype != DType::F32 || !in.data.count(s.name)) continue;
    std::string gname = std::string("d") + s.name;
    if (!grads.data.count(gname)) gname = "d" + upper_first(s.name);
    if (!grads.data.count(gname)) continue;
    const std::vector<float>& g = grads.data.at(gname);
    double gmax = 0;
    for (float x : g) gmax = std::max(gmax, static_cast<double>(std::fabs(x)));
    for (int k = 0; k < 6; ++k) {
      const size_t i = static_cast<size_t>(rng.below(static_cast<int64_t>(g.size())));
      const float h = 1e-3f;
      Host plus = in, minus = in;
      plus.data[s.name][i] += h;
      minus.data[s.name][i] -= h;
      const double fd = (objective(run(d, d.forward, cpu, c.attrs, plus), weights) -
                         objective(run(d, d.forward, cpu, c.attrs, minus), weights)) /
                        (static_cast<double>(plus.data[s.name][i]) - minus.data[s.name][i]);
      const double ratio =
          std::fabs(fd - g[i]) / (5e-3 * std::max({std::fabs(static_cast<double>(g[i])), 0.1 * gmax, 1e-3}));
      ++tally.checks;
      if (ratio > 1 && ratio > worst) {
        char buf[160];
        std::snprintf(buf, sizeof buf, " %s[%zu]: backward %.6g, finite difference %.6g;", gname.c_str(), i, g[i], fd);
        *why += buf;
      }
      worst = std::max(worst, ratio);
    }
  }
  return worst;
}

// Counts one case and prints its line (with why it failed, when it did).
void finish_case(bool ok, const std::string& line, const std::string& why, Tally& tally) {
  ++tally.cases;
  if (!ok) ++tally.failures;
  std::printf("%s %s%s\n", ok ? "ok  " : "FAIL", line.c_str(), ok ? "" : (" --" + why).c_str());
  std::fflush(stdout);
}

void run_case(const OpDef& d, Case c, Tally& tally) {
  add_lists(d.family, c);
  Rng rng(0x5eed + tally.cases);
  Host in;
  make_inputs(d.forward, c, rng, in);
  std::string why;
  bool ok = true;
  std::string line = std::string(d.family) + " [" + c.label + "]:";
  try {
    const Host ref = run(d, d.forward, cpu_backend(), c.attrs, in);
    ok = compare_outputs(d.forward, run(d, d.forward, cpu_backend(), c.attrs, in), ref, true, &why, tally) && ok;
    std::string on = "cpu", missing;
    ok = check_other_backends(d, d.forward, c.attrs, in, ref, &on, &missing, &why, tally) && ok;
    line += missing;
    line += " forward ok on " + on;
    const bool tiny = std::string(c.label).rfind("tiny", 0) == 0;
    if (d.has_backward && tiny) {
      const double worst = check_gradients(d, c, in, ref, rng, &why, tally);
      ok = ok && worst <= 1;
      char buf[96];
      std::snprintf(buf, sizeof buf, "; backward vs finite differences: worst %.3g of tolerance", worst);
      line += buf;
    }
    if (d.has_backward) {
      // The CPU backward is deterministic (bit-identical run twice; the finite differences check its
      // values at the tiny shape), and every other backend's is compared with it.
      std::map<std::string, std::vector<float>> weights;
      const Host bwd_in = backward_inputs(d, in, ref, rng, &weights);
      const Host gref = run(d, d.backward, cpu_backend(), c.attrs, bwd_in);
      ok = compare_outputs(d.backward, run(d, d.backward, cpu_backend(), c.attrs, bwd_in), gref, true, &why, tally) &&
           ok;
      std::string bwd_on = "cpu";
      ok = check_other_backends(d, d.backward, c.attrs, bwd_in, gref, &bwd_on, nullptr, &why, tally) && ok;
      line += "; backward ok on " + bwd_on;
    }
  } catch (const std::exception& e) {
    ok = false;
    why += std::string(" threw: ") + e.what();
  }
  finish_case(ok, line, why, tally);
}

// ---------------------------------------------------------------------------------------------
// bf16 entries. An entry in bf16 reads some arguments (weights, a KV cache) as bf16 and computes in
// f32. It runs on inputs rounded to bf16 and is compared with its family's f32 entry on the unrounded
// inputs (moe_experts: on the widened bf16 arguments, see below), so the tolerance is what rounding the
// bf16 arguments explains plus both sides' f32 error:
//
//   bf16 rounding: round to nearest with 8 significant bits moves x by at most u|x|, u = 2^-8 (the
//   unit roundoff; bf16.h). An f32 sum of n terms is within gamma_n = n * 2^-24 (to first order) of
//   the exact sum, times the sum of the terms' magnitudes, in whatever order it is taken.
//
//   linear, forward: y = x W^T + b. Rounding W moves y_i by at most u sum_k |x_k||W_ik|; each side's
//   sums (in + 1 terms) add gamma_{in+1} (sum_k |x_k||W_ik| + |b_i|). So |y_bf16 - y_f32| <= (u +
//   2 gamma_{in+1}) R_i with R = |x| |W|^T + |b|, which is the f32 op run on the magnitudes.
//   linear, backward: dx = dy W (reduction over out), dW = dy^T x and db (over T; W not involved):
//   (u + 2 gamma_{max(T, out) + 1}) times the backward run on |dy|, |x|, |W| bounds every output.
//   kv_cache_write: stores round(k), round(v) where it writes and leaves round(cache) elsewhere: u
//   times the write run on the magnitudes.
//   paged_attention: out = sum_j p_j v_j, p = softmax(scale q.k_j) over n keys of head_dim D.
//   Rounding k moves each score by at most ds = u scale D max|q| max|k|, so each p_j by a factor
//   within exp(+-2 ds); rounding v moves v_j by u|v_j|. So |out_bf16 - out_f32| <= (u + (exp(2 ds)
//   - 1)(1 + u)) sum_j p_j |v_j| plus both sides' f32 error: the scores' (gamma_D scale D max|q|
//   max|k| each, through the same exp factor) and the softmax and weighted sum's (gamma_{n+4} each).
//   sum_j p_j |v_j| is the f32 op run with |v| (p is unchanged).
//   moe_experts: through three products and SwiGLU a bound from magnitudes for rounding the weights
//   exceeds the values at Qwen3 widths (moe.h). So this family is compared with the f32 entry on the
//   widened bf16 weights (the same values), the routing held fixed (the router logits are f32 in both
//   entries): what is left is the order of the f32 sums, moe.h's moe_experts_bf16_factor, which still
//   fails a wrong widening or a misplaced row.
// The bound is elementwise: a rounding fault, a wrong widening or a misplaced row fails it (their
// errors are of the size of the values, far above u).

constexpr double kBf16Unit = 1.0 / 256;      // u = 2^-8
constexpr double kF32Unit = 1.0 / 16777216;  // 2^-24

// How a family's bf16 tolerance is made: the f32 reference pass run on the magnitudes of `abs_inputs`
// (other inputs unchanged), times factor(derived options, inputs).
struct Bf16Rule {
  std::vector<std::string> abs_inputs;
  double (*factor)(const Attrs& a, const Host& in);
  bool on_widened = false;  // the reference reads the bf16 arguments widened, not the unrounded inputs
};

double max_abs(const std::vector<float>& v) {
  double m = 0;
  for (float x : v) m = std::max(m, static_cast<double>(std::fabs(x)));
  return m;
}

double paged_attention_factor(const Attrs& a, const Host& in) {
  const double D = static_cast<double>(a.i("headDim")), n = static_cast<double>(a.i("keysBound") - 1);
  const double qk = a.f("scale") * D * max_abs(in.data.at("q")) * max_abs(in.data.at("kCache"));
  const double grow = std::exp(2 * (kBf16Unit + 2 * D * kF32Unit) * qk) - 1;
  return kBf16Unit + grow * (1 + kBf16Unit) + 2 * (n + 4) * kF32Unit;
}

double moe_experts_factor(const Attrs& a, const Host& in) {
  MoeShape s;
  s.T = a.i("tokens"), s.H = a.i("hidden"), s.I = a.i("intermediate"), s.E = a.i("experts"), s.K = a.i("topK");
  const double gate_max = cpu::moe_gate_magnitude_max(in.data.at("x").data(), in.data.at("gateUp").data(), s);
  return cpu::moe_experts_bf16_factor(s, gate_max);
}

const Bf16Rule& bf16_rule(const std::string& pass) {
  static const std::map<std::string, Bf16Rule> rules = {
      {"linear.forward",
       {{"x", "W", "b"},
        [](const Attrs& a, const Host&) { return kBf16Unit + 2 * static_cast<double>(a.i("in") + 1) * kF32Unit; }}},
      {"linear.backward",
       {{"dy", "x", "W"},
        [](const Attrs& a, const Host&) {
          return kBf16Unit + 2 * static_cast<double>(std::max(a.i("T"), a.i("out")) + 1) * kF32Unit;
        }}},
      {"kv_cache_write.forward", {{"k", "v", "kCache", "vCache"}, [](const Attrs&, const Host&) { return kBf16Unit; }}},
      {"paged_attention.forward", {{"vCache"}, paged_attention_factor}},
      {"moe_experts.forward", {{"x", "gateUp", "down"}, moe_experts_factor, true}},
      {"moe_experts.backward", {{"dout", "x", "gateUp", "down"}, moe_experts_factor, true}},
  };
  auto it = rules.find(pass);
  MEDIX_CHECK(it != rules.end(), "op_conformance: no bf16 tolerance rule for ", pass, " (add one above)");
  return it->second;
}

// The same inputs with the bf16 entry's bf16 arguments rounded (bf16.h's conversion).
Host rounded_for(const OpPass& p, const Host& in) {
  Host out = in;
  for (const ArgSpec& s : p.args) {
    if (s.dtype != DType::BF16 || !in.data.count(s.name)) continue;
    const std::vector<float>& x = in.data.at(s.name);
    out.bf16[s.name].resize(x.size());
    f32_to_bf16(out.bf16[s.name].data(), x.data(), static_cast<int64_t>(x.size()));
    out.data.erase(s.name);
  }
  return out;
}

// The rounded inputs with the bf16 arguments widened back to f32: the values the bf16 entry reads.
Host widened(const Host& rounded) {
  Host out = rounded;
  for (const auto& [name, bits] : rounded.bf16) {
    std::vector<float>& x = out.data[name];
    x.resize(bits.size());
    bf16_to_f32(x.data(), bits.data(), static_cast<int64_t>(bits.size()));
  }
  out.bf16.clear();
  return out;
}

// One pass of a bf16 entry against its f32 entry: returns the worst |diff| / tolerance (pass <= 1).
double compare_bf16_pass(const OpDef& ref, const OpPass& ref_pass, const OpDef& d, const OpPass& pass,
                         const std::string& name, const Attrs& attrs, const Host& in, std::string* why, Tally& tally) {
  Backend& cpu = cpu_backend();
  const Bf16Rule& rule = bf16_rule(name);
  const Host reference_in = rule.on_widened ? widened(rounded_for(pass, in)) : in;
  const Host want = run(ref, ref_pass, cpu, attrs, reference_in);
  const Host got = run(d, pass, cpu, attrs, rounded_for(pass, in));
  const Host again = run(d, pass, cpu, attrs, rounded_for(pass, in));
  Host mags = reference_in;
  for (const std::string& k : rule.abs_inputs)
    if (mags.data.count(k))
      for (float& x : mags.data[k]) x = std::fabs(x);
  const Host bound = run(ref, ref_pass, cpu, attrs, mags);
  Attrs derived = attrs;
  Tensors view = mags.view(ref_pass);
  check_call(ref_pass, derived, view);
  const double factor = rule.factor(derived, reference_in);
  double worst = 0;
  for (const ArgSpec& s : pass.args) {
    if (s.role == Role::In || !want.data.count(s.name)) continue;
    ++tally.checks;
    std::vector<float> g(want.data.at(s.name).size());
    if (s.dtype == DType::BF16)
      bf16_to_f32(g.data(), got.bf16.at(s.name).data(), static_cast<int64_t>(g.size()));
    else
      g = got.data.at(s.name);
    const bool same = s.dtype == DType::BF16
                          ? got.bf16.at(s.name) == again.bf16.at(s.name)
                          : std::memcmp(g.data(), again.data.at(s.name).data(), sizeof(float) * g.size()) == 0;
    if (!same) *why += std::string(" ") + s.name + " not deterministic;";
    const std::vector<float>& w = want.data.at(s.name);
    const std::vector<float>& b = bound.data.at(s.name);
    for (size_t i = 0; i < w.size(); ++i) {
      const double tol = factor * std::fabs(b[i]) + 1e-30;
      const double ratio = std::isfinite(g[i]) ? std::fabs(static_cast<double>(g[i]) - w[i]) / tol : INFINITY;
      if (ratio > 1 && ratio > worst) {
        char buf[160];
        std::snprintf(buf, sizeof buf, " %s[%zu]: bf16 %.6g, f32 %.6g, tolerance %.3g;", s.name, i, g[i], w[i], tol);
        *why += buf;
      }
      worst = std::max(worst, ratio);
    }
    if (!same) worst = INFINITY;
  }
  return worst;
}

// A bf16 pass on the backends other than the CPU, against the CPU's on the same (rounded) inputs.
bool bf16_on_backends(const OpDef& d, const OpPass& pass, const Attrs& attrs, const Host& in, std::string* on,
                      std::string* missing, std::string* why, Tally& tally) {
  const CudaTiled tiled;
  const Host rounded = rounded_for(pass, in);
  return check_other_backends(d, pass, attrs, rounded, run(d, pass, cpu_backend(), attrs, rounded), on, missing, why,
                              tally);
}

void run_bf16_case(const OpDef& d, Case c, Tally& tally) {
  add_lists(d.family, c);
  Rng rng(0x5eed + tally.cases);
  const OpDef& ref = find_op(d.family, DType::F32);
  std::string why;
  bool ok = true;
  std::string line = std::string(d.family) + "/" + dtype_name(d.dtype) + " [" + c.label + "]:";
  try {
    Host in;
    make_inputs(ref.forward, c, rng, in);
    const double fwd =
        compare_bf16_pass(ref, ref.forward, d, d.forward, std::string(d.family) + ".forward", c.attrs, in, &why, tally);
    ok = fwd <= 1;
    char buf[160];
    std::snprintf(buf, sizeof buf, " forward vs f32 reference: worst %.3g of tolerance", fwd);
    line += buf;
    std::string on = "cpu", missing;
    ok = bf16_on_backends(d, d.forward, c.attrs, in, &on, &missing, &why, tally) && ok;
    line += missing + "; forward ok on " + on;
    if (d.has_backward) {
      std::map<std::string, std::vector<float>> weights;
      const Host bwd_in = backward_inputs(ref, in, run(ref, ref.forward, cpu_backend(), c.attrs, in), rng, &weights);
      const double bwd = compare_bf16_pass(ref, ref.backward, d, d.backward, std::string(d.family) + ".backward",
                                           c.attrs, bwd_in, &why, tally);
      ok = ok && bwd <= 1;
      std::snprintf(buf, sizeof buf, "; backward vs f32 reference: worst %.3g of tolerance", bwd);
      line += buf;
      std::string bwd_on = "cpu";
      ok = bf16_on_backends(d, d.backward, c.attrs, bwd_in, &bwd_on, nullptr, &why, tally) && ok;
      line += "; backward ok on " + bwd_on;
    }
  } catch (const std::exception& e) {
    ok = false;
    why += std::string(" threw: ") + e.what();
  }
  finish_case(ok, line, why, tally);
}
// The backend ops an entry's passes ran on the guard (`seen`) must be the ones it declares (OpDef::ops), from
// which supports() answers. Returns the failures.
int check_declared_ops(const OpDef& d, const std::set<std::string>& seen) {
  std::set<std::string> declared;
  for (int id : d.ops) declared.insert(op_name(id));
  if (declared == seen) return 0;
  std::string got, want;
  for (const std::string& s : seen) got += " " + s;
  for (const std::string& s : declared) want += " " + s;
  std::printf("FAIL %s/%s: runs backend ops%s but declares%s\n", d.family, dtype_name(d.dtype), got.c_str(),
              want.c_str());
  return 1;
}

// An entry that reads an argument as the wrong dtype (bf16 bits as floats) must fail, naming it: the typed
// accessors of Tensors. Returns the failures.
int check_tensor_dtypes() {
  uint16_t bits[2] = {0, 0};
  Tensors t;
  t.t["W"] = {bits, 2, DType::BF16};
  std::string got = "no error";
  try {
    t.f("W");
  } catch (const std::exception& e) {
    got = e.what();
  }
  const bool ok = got.find("reads 'W' as f32 but it holds bf16") != std::string::npos && t.h("W") == bits;
  if (!ok) std::printf("FAIL tensors: reading a bf16 argument as f32 gave \"%s\"\n", got.c_str());
  return ok ? 0 : 1;
}

// The backend ops every device backend is to have: the CPU's, less its reference-only ones (run on the CPU
// by their entries).
std::vector<int> device_ops() {
  const OpTable& cpu = registered_ops("cpu");
  std::vector<int> ids;
  for (int id = 0; id < static_cast<int>(cpu.size()); ++id)
    if (has_op(cpu, id) && !reference_only(id)) ids.push_back(id);
  return ids;
}

#ifdef MEDIX_OP_CONFORMANCE_CUDA
// Needs no device: the kernel files register every op of device_ops() for "cuda" (a kernel file that lost
// its MEDIX_CUDA_OP line would otherwise show only where a GPU runs the op). Returns the failures.
int check_cuda_registrations() {
  const std::vector<int> ops = device_ops();
  int unregistered = 0;
  for (int id : ops)
    if (!has_op(registered_ops("cuda"), id)) {
      std::printf("FAIL cuda: op %s is not registered\n", op_name(id));
      ++unregistered;
    }
  std::printf("cuda registrations: %d ops of the cpu's %zu (its reference-only ops aside)\n",
              static_cast<int>(ops.size()) - unregistered, ops.size());
  return unregistered;
}
#endif

// Every backend op the CPU registers is run above by some table entry on the guard (it saw it), or is one of
// the few whose arguments the table cannot state, tested on every backend elsewhere: listed here with where,
// and the list must not hold an op the table runs. Reference-only ops (the CPU's alone) are run by their
// entries on the CPU. Returns the failures.
int check_coverage(const std::set<std::string>& ran_by_table) {
  const std::map<std::string, const char*> elsewhere = {
      {"sample",
       "per-row sampler parameters: sampleLogits on cpu and cuda-guard (test/generate/sampler.test.ts), "
       "cuda_conformance's sampling cases"},
      {"moe_aux_backward",
       "load statistics in host memory: moeAuxLoss on cpu and cuda-guard (test/ops/moe.test.ts), "
       "cuda_conformance's moe_aux case"},
      {"to_bf16", "a compute copy: device_memory_guard's bf16 models, cuda_conformance's to_bf16 case"},
      {"from_bf16",
       "full sharding's bf16 gathers: device_memory_guard's full shard bf16 cases, cuda_conformance's "
       "from_bf16 case"},
  };
  const std::vector<int> ops = device_ops();
  const int registered = static_cast<int>(ops.size());
  int failures = 0;
  for (int id : ops) {
    const std::string name = op_name(id);
    const bool ran = ran_by_table.count(name) != 0, listed = elsewhere.count(name) != 0;
    if (!ran && !listed) std::printf("FAIL backend op %s: no table entry runs it\n", name.c_str());
    if (ran && listed)
      std::printf("FAIL backend op %s: run by the table, so not to be listed as tested elsewhere\n", name.c_str());
    if (ran == listed) ++failures;
  }
  std::string names;
  for (const auto& [name, where] : elsewhere) names += (names.empty() ? "" : ", ") + name;
  std::printf("backend ops: %d registered, %d run by the table entries, %zu tested elsewhere (%s)\n", registered,
              registered - static_cast<int>(elsewhere.size()), elsewhere.size(), names.c_str());
  return failures;
}

}  // namespace
}  // namespace medix

int main(int argc, char** argv) {
  using namespace medix;
  bool require_cuda = false;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--require-cuda") {
      require_cuda = true;
    } else {
      std::fprintf(stderr, "op_conformance: unknown option '%s' (--require-cuda)\n", argv[i]);
      return 2;
    }
  }
  backends();
  if (!cuda_absent.empty()) {
    std::printf("cuda: not run: %s\n", cuda_absent.c_str());
    if (require_cuda) {
      std::printf("op conformance: FAIL: --require-cuda, and the CUDA backend is not here\n");
      return 1;
    }
  }
  const auto all = cases();
  Tally tally;
  std::set<std::string> ran;  // the backend ops the guard ran, over all entries
#ifdef MEDIX_OP_CONFORMANCE_CUDA
  tally.failures += medix::check_cuda_registrations();
#endif
  for (const OpDef& d : op_table()) {
    ++tally.ops;
    auto it = all.find(d.family);
    if (it == all.end()) {
      std::printf("FAIL %s: no shapes listed in op_conformance.cc\n", d.family);
      ++tally.failures;
      continue;
    }
    guard().seen.clear();
    for (const Case& c : it->second) {
      if (d.dtype == DType::F32)
        run_case(d, c, tally);
      else
        run_bf16_case(d, c, tally);
    }
    if (supports(guard().ops(), d)) tally.failures += medix::check_declared_ops(d, guard().seen);
    ran.insert(guard().seen.begin(), guard().seen.end());
  }
  tally.failures += medix::check_coverage(ran) + medix::check_tensor_dtypes();
  std::string names;
  for (Backend* be : backends()) names += (names.empty() ? "" : ", ") + label(be);
  std::printf("op conformance: %d ops, %d cases, %d checks on %s: %d failed\n", tally.ops, tally.cases, tally.checks,
              names.c_str(), tally.failures);
  return tally.failures == 0 ? 0 : 1;
}
