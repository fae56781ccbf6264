// Built by scripts/build-op-conformance.sh (build/op-conformance/device_memory_guard) and run by
// test/core/op-conformance.test.ts, on any CPU machine (no GPU): the model's training and generation, dense, MoE and
// Qwen3-VL, on the device-memory guard (guard_backend.h), every output compared with the CPU backend's; data
// parallel training with its buffers on a device communicator (NCCL's role) and its host values on another (MPI's);
// and full sharding over three forked ranks (fork_ranks.h), its layouts reserved in the guard's memory.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/error.h"
#include "core/reservation.h"
#include "dist/communicator.h"
#include "model/generator.h"
#include "model/kv_cache.h"
#include "model/qwen3.h"
#include "ops/adamw.h"
#include "ops/attention.h"
#include "ops/moe.h"
#include "ops/paged_attention.h"
#include "ops/residual.h"
#include "ops/rope.h"
#include "ops/sampling.h"
#include "fork_ranks.h"
#include "guard_backend.h"
#include "model_params.h"

using namespace medix;
using medix::testing::ForkRanks;
using medix::testing::ForkShared;
using medix::testing::GuardBackend;

namespace {

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return s;
  }
  int32_t below(int64_t n) { return static_cast<int32_t>(next() % n); }
  float uniform(float lo, float hi) { return lo + (hi - lo) * ((next() >> 40) / 16777216.0f); }
};

using Outputs = std::vector<std::pair<std::string, std::vector<float>>>;

// The packed batch the cases train on: two sequences, 16 tokens (the test images' tokens for Qwen3-VL), a
// few rows without a target. b points into the other members.
struct TrainBatch {
  static constexpr int64_t T = 16;
  const std::vector<int32_t> cu = {0, 9, 16};
  std::vector<int32_t> tokens = std::vector<int32_t>(T), targets = std::vector<int32_t>(T);
  std::optional<TestImages> images;
  PackedBatch b;
  // with_images: false leaves a Qwen3-VL model's batch text only.
  TrainBatch(const Qwen3Config& cfg, Rng& rng, bool with_images = true) {
    for (auto& t : tokens) t = rng.below(cfg.vocab - 1);  // the last id is a Qwen3-VL model's image token
    if (cfg.vision && with_images) images.emplace(*cfg.vision);
    if (images) images->place(cfg, tokens, b);
    for (int64_t t = 0; t < T; ++t) targets[t] = t == 8 || t == 15 || t < 3 ? -1 : tokens[t + 1];
    b.T = T, b.tokens = tokens.data(), b.cu_seqlens = cu.data(), b.n_seqs = 2, b.targets = targets.data();
  }
  TrainBatch(const TrainBatch&) = delete;
  TrainBatch& operator=(const TrainBatch&) = delete;
};

// Rank 0 of two ranks that compute alike, in one process, for the data-parallel step (ZeRO-1). As a
// `buffers` communicator it moves the model's memory, as NCCL does on a GPU: every pointer must be backend
// memory (the guard checks it) and the other rank's equal share is added by a backend op; as `scalars` it
// sums host values, as MPI does beside NCCL: every pointer must be host memory. So a host value handed to
// the device communicator, or a device buffer to the host one, is a contract violation here, as it would be
// a crash there. Broadcasts leave the buffer as it is (the twin's shard is not computed), alike on both
// backends, so the outputs still match the CPU's bit for bit.
class TwinRanks final : public Communicator {
 public:
  TwinRanks(Backend& be, bool buffers) : be_(be), guard_(dynamic_cast<GuardBackend*>(&be)), buffers_(buffers) {}
  const char* name() const override { return buffers_ ? "twin buffers" : "twin scalars"; }
  int rank() const override { return 0; }
  int size() const override { return 2; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 2; }
  void allreduce_sum(void* buf, int64_t n, DType t) override { twice(buf, n, t, "allreduce_sum"); }
  void reduce_sum(void* buf, int64_t n, DType t, int root) override {
    if (root == rank())
      twice(buf, n, t, "reduce_sum");
    else
      check(buf, n * static_cast<int64_t>(dtype_bytes(t)), "reduce_sum");
  }
  void broadcast(void* buf, int64_t bytes, int) override { check(buf, bytes, "broadcast"); }
  void allgather_equal(const void*, void*, int64_t, DType) override { unused("allgather_equal"); }
  void reduce_scatter_sum(const void*, void*, int64_t, DType) override { unused("reduce_scatter_sum"); }
  void start_gather(Backend&, const void*, void*, int64_t, int64_t, DType) override { unused("start_gather"); }
  std::vector<std::vector<uint8_t>> allgather(const void*, int64_t) override { unused("allgather"); }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }

 private:
  void check(const void* p, int64_t bytes, const char* op) const {
    if (!guard_) return;
    if (buffers_)
      guard_->dev_range(p, static_cast<size_t>(bytes), op, "the buffers communicator's buffer");
    else
      guard_->host(p, op, "the scalars communicator's buffer");
  }
  void twice(void* buf, int64_t n, DType t, const char* op) {
    check(buf, n * static_cast<int64_t>(dtype_bytes(t)), op);
    if (t == DType::F32 && buffers_)
      be_.run<ScaleInplace>(static_cast<float*>(buf), 2.0f, n);
    else if (t == DType::F64 && !buffers_)
      for (int64_t i = 0; i < n; ++i) static_cast<double*>(buf)[i] *= 2;
    else
      fail(name(), ": ", op, " of ", dtype_name(t), " values, which data parallel does not send here");
  }
  [[noreturn]] void unused(const char* op) const { fail(name(), ": ", op, " is not used by data parallel"); }
  Backend& be_;
  GuardBackend* guard_;
  bool buffers_;
};

Outputs run(Backend& be, const Qwen3Config& cfg, bool recompute, ComputeDType dtype, bool data_parallel = false) {
  Outputs out;
  Qwen3Model model(cfg, be, 7, 0.05f);
  TwinRanks buffers(be, true), scalars(be, false);
  if (data_parallel) model.set_data_parallel(buffers, scalars);
  model.set_recompute(recompute);
  model.set_compute_dtype(dtype);
  if (cfg.experts > 0) model.set_aux_loss_weight(0.05f);
  Rng rng{40};
  const TrainBatch batch(cfg, rng);
  const std::vector<int32_t>& cu = batch.cu;
  const std::vector<int32_t>& tokens = batch.tokens;
  const std::optional<TestImages>& images = batch.images;
  const PackedBatch b = batch.b;
  const int64_t T = TrainBatch::T;
  for (int step = 0; step < 2; ++step) {
    ForwardOptions fo;
    fo.training = true, fo.entropy = true, fo.temperature = 0.9f;
    std::vector<float> logp(T), ent(T);
    model.forward(b, fo, logp.data(), ent.data(), nullptr);
    out.push_back({"logp", logp});
    out.push_back({"entropy", ent});
    if (cfg.experts > 0) {
      auto aux = model.aux_losses();
      out.push_back({"aux", std::vector<float>(aux.begin(), aux.end())});
      out.push_back({"load", std::vector<float>(model.expert_load().begin(), model.expert_load().end())});
    }
    std::vector<float> dlogp(T), dent(T);
    for (auto& x : dlogp) x = rng.uniform(-1, 1);
    for (auto& x : dent) x = rng.uniform(-0.1f, 0.1f);
    model.zero_grad();
    model.backward(dlogp.data(), T, dent.data());
    out.push_back({"grads", every_param(model, &Qwen3Model::get_grad)});
    AdamWConfig adam;
    adam.lr = 1e-3f;
    StepResult r = model.optimizer_step(adam, 0.5f, std::vector<bool>(model.params().size(), true));
    out.push_back({"norm", {static_cast<float>(r.grad_norm)}});
  }
  out.push_back({"weights", every_param(model, &Qwen3Model::get_param)});
  {  // inference forward with full logits, all targets present (R == T) and none (R == 0)
    ForwardOptions fo;
    fo.logits = true, fo.temperature = 0.7f;
    std::vector<float> logp(T), logits(T * cfg.vocab);
    model.forward(b, fo, logp.data(), nullptr, logits.data());
    out.push_back({"infer_logp", logp});
    out.push_back({"infer_logits", logits});
    if (cfg.vision) {
      // An inference forward keeps no vision tower (no backward can follow it): it leaves as many
      // allocations live as the same forward without the images does.
      auto* guard = dynamic_cast<GuardBackend*>(&be);
      const size_t with_images = guard ? guard->live() : 0;
      std::vector<int32_t> text(tokens);
      for (int32_t& t : text) t = t == cfg.image_token_id ? 0 : t;
      PackedBatch plain = b;
      plain.tokens = text.data(), plain.n_images = 0, plain.pixels = nullptr, plain.grids = nullptr;
      model.forward(plain, fo, logp.data(), nullptr, logits.data());
      if (guard && guard->live() != with_images) {
        printf("an inference forward with images left %zu allocations live, one without %zu\n", with_images,
               guard->live());
        ++guard->violations;
      }
    }
    std::vector<int32_t> all_t(T), none(T, -1);
    for (int64_t t = 0; t < T; ++t) all_t[t] = rng.below(cfg.vocab);
    PackedBatch b2 = b;
    b2.targets = all_t.data();
    ForwardOptions tr;
    tr.training = true;
    model.forward(b2, tr, logp.data(), nullptr, nullptr);
    out.push_back({"all_targets_logp", logp});
    std::vector<float> g(T, 0.1f);
    model.backward(g.data(), T, nullptr);
    b2.targets = none.data();
    model.forward(b2, tr, logp.data(), nullptr, nullptr);
    model.backward(g.data(), T, nullptr);
    out.push_back({"grads2", every_param(model, &Qwen3Model::get_grad)});
    std::vector<float> m(model.optimizer_floats()), v(model.optimizer_floats());
    model.get_optimizer_state(m.data(), v.data());
    out.push_back({"adam_m", m});
    model.set_optimizer_state(m.data(), v.data(), model.optimizer_steps());
  }
  {  // generation: prefill two prompts, fork one (copy on write), sample a few steps
    Generator gen(model, 4, 32);
    KvCache& cache = gen.cache();
    const int64_t a = cache.add_sequence(), c = cache.add_sequence();
    std::vector<SamplerParams> sp(2);
    sp[0].temperature = 0.8f, sp[0].seed = 3, sp[0].repetition_penalty = 1.2f, sp[0].top_k = 20;
    sp[1].temperature = 1.0f, sp[1].seed = 4, sp[1].top_p = 0.9f;
    CachedStep s;
    std::vector<int64_t> ids = {a, c};
    std::vector<int32_t> rows = {8, 15}, tok(2);
    std::vector<float> lp(2);
    s.T = T, s.tokens = tokens.data(), s.n_seqs = 2, s.seq_ids = ids.data(), s.cu_seqlens = cu.data();
    s.n_logit_rows = 2, s.logit_rows = rows.data();
    if (images) images->place(s);
    gen.step(s, sp.data(), tok.data(), lp.data());
    s = CachedStep{};
    std::vector<float> trace;
    const int64_t f = cache.fork(a);  // shares a's partly filled last block (9 tokens, block 4)
    std::vector<int64_t> ids3 = {a, c, f};
    std::vector<int32_t> cu3 = {0, 1, 2, 3}, rows3 = {0, 1, 2}, tok3(3), next(3);
    std::vector<float> lp3(3);
    std::vector<SamplerParams> sp3 = {sp[0], sp[1], sp[0]};
    sp3[2].stream = 1;
    next = {tok[0], tok[1], tok[0]};
    for (int it = 0; it < 5; ++it) {
      s.T = 3, s.tokens = next.data(), s.n_seqs = 3, s.seq_ids = ids3.data(), s.cu_seqlens = cu3.data();
      s.n_logit_rows = 3, s.logit_rows = rows3.data();
      for (auto& p : sp3) ++p.counter;
      gen.step(s, sp3.data(), tok3.data(), lp3.data());
      for (int k = 0; k < 3; ++k) trace.push_back(static_cast<float>(tok3[k])), trace.push_back(lp3[k]);
      next = tok3;
    }
    out.push_back({"gen", trace});
    auto st = gen.stats();
    out.push_back({"copies", {static_cast<float>(st.cache.block_copies)}});
  }
  model.release_decode_workspace();
  return out;
}

// What rank `rank` of the full-sharding cases trains on: its own batch (text only on the last rank, so a
// Qwen3-VL model's ranks differ in having images), and the d/dlogp of each backward pass (two passes a
// step, two steps).
constexpr int kShardSteps = 2, kShardPasses = 2;
constexpr float kNotMine = -1e30f;  // an output element another rank holds
struct RankDraws {
  Rng rng;
  TrainBatch batch;
  std::vector<std::vector<float>> dlogp;
  RankDraws(const Qwen3Config& cfg, int rank)
      : rng{static_cast<uint64_t>(50 + rank)}, batch(cfg, rng, rank < ForkShared::kRanks - 1) {
    for (int i = 0; i < kShardSteps * kShardPasses; ++i) {
      dlogp.emplace_back(TrainBatch::T);
      for (auto& x : dlogp.back()) x = rng.uniform(-1, 1);
    }
  }
};

// Full sharding over the ranks of `buffers` (which moves the model's memory; `scalars` sums host values):
// each rank trains on its own draws, then gathers the weights for an inference forward and gives them back.
Outputs run_full_shard(Backend& be, Communicator& buffers, Communicator& scalars, const Qwen3Config& cfg,
                       bool recompute, ComputeDType dtype) {
  Outputs out;
  Qwen3Model model(cfg, be, 7, 0.05f);
  model.set_full_shard(buffers, scalars);
  model.set_recompute(recompute);
  model.set_compute_dtype(dtype);
  if (cfg.experts > 0) model.set_aux_loss_weight(0.05f);
  const RankDraws draws(cfg, buffers.rank());
  const int64_t T = TrainBatch::T;
  for (int step = 0; step < kShardSteps; ++step) {
    model.zero_grad();
    for (int pass = 0; pass < kShardPasses; ++pass) {
      ForwardOptions fo;
      fo.training = true, fo.entropy = true;
      std::vector<float> logp(T), ent(T);
      model.forward(draws.batch.b, fo, logp.data(), ent.data(), nullptr);
      out.push_back({"logp", logp});
      out.push_back({"entropy", ent});
      model.backward(draws.dlogp[step * kShardPasses + pass].data(), T, nullptr);
    }
    AdamWConfig adam;
    adam.lr = 1e-3f;
    const StepResult r = model.optimizer_step(adam, 0.5f, std::vector<bool>(model.params().size(), true));
    out.push_back({"norm", {static_cast<float>(r.grad_norm)}});
  }
  std::vector<float> shard(model.optimizer_floats()), m(shard.size()), v(shard.size());
  model.get_full_shard_weights(shard.data());
  model.get_optimizer_state(m.data(), v.data());
  out.push_back({"shard weights", shard});
  out.push_back({"adam_v", v});
  // The first moments of this rank's parts at their places in the whole layout (kNotMine elsewhere): after
  // two steps they hold both steps' clipped gradients, which the one process's must match.
  std::vector<float> m_layout(model.n_params(), kNotMine);
  double covered = 0;
  for (const Qwen3Model::OwnedPart& part : model.full_shard_parts()) {
    std::copy_n(m.begin() + part.at, part.count, m_layout.begin() + model.params()[part.tensor].offset + part.from);
    covered += static_cast<double>(part.count);
  }
  out.push_back({"adam_m", m_layout});
  // The ranks' parts together cover the layout once (a part missing from every rank would go unchecked above).
  scalars.allreduce_sum(&covered, 1, DType::F64);
  out.push_back({"parts cover the layout", {covered == static_cast<double>(model.n_params()) ? 1.0f : 0.0f}});
  model.gather_weights();
  out.push_back({"gathered weights", every_param(model, &Qwen3Model::get_param)});
  ForwardOptions fo;
  fo.logits = true;
  std::vector<float> logp(T), logits(T * cfg.vocab);
  model.forward(draws.batch.b, fo, logp.data(), nullptr, logits.data());
  out.push_back({"gathered logits", logits});
  model.release_weights();
  out.push_back({"resident after", {static_cast<float>(model.full_shard_memory().gathered_bytes)}});
  return out;
}

// One process on every rank's batch packed as one (their sequences one after another) with their d/dlogp
// end to end: the sum of the ranks' losses, whose steps full sharding must reproduce. Outputs named as
// run_full_shard's: each pass's log-probs of rank `rank`'s rows, each step's norm, the final weights.
Outputs run_one_process(const Qwen3Config& cfg, bool recompute, int rank, int ranks) {
  std::vector<std::unique_ptr<RankDraws>> draws;
  std::vector<int32_t> tokens, targets, cu = {0};
  std::vector<float> pixels;
  std::vector<ImageGrid> grids;
  for (int r = 0; r < ranks; ++r) {
    draws.push_back(std::make_unique<RankDraws>(cfg, r));
    const TrainBatch& b = draws.back()->batch;
    tokens.insert(tokens.end(), b.tokens.begin(), b.tokens.end());
    targets.insert(targets.end(), b.targets.begin(), b.targets.end());
    for (size_t s = 1; s < b.cu.size(); ++s) cu.push_back(r * static_cast<int32_t>(TrainBatch::T) + b.cu[s]);
    if (b.images) {
      pixels.insert(pixels.end(), b.images->pixels.begin(), b.images->pixels.end());
      grids.insert(grids.end(), b.images->grids.begin(), b.images->grids.end());
    }
  }
  const int64_t T = TrainBatch::T * ranks, rows = TrainBatch::T;
  PackedBatch b;
  b.T = T, b.tokens = tokens.data(), b.targets = targets.data(), b.cu_seqlens = cu.data();
  b.n_seqs = static_cast<int64_t>(cu.size()) - 1;
  b.pixels = pixels.data(), b.grids = grids.data(), b.n_images = static_cast<int64_t>(grids.size());
  Qwen3Model model(cfg, cpu_backend(), 7, 0.05f);
  model.set_recompute(recompute);
  if (cfg.experts > 0) model.set_aux_loss_weight(0.05f);
  Outputs out;
  for (int step = 0; step < kShardSteps; ++step) {
    model.zero_grad();
    for (int pass = 0; pass < kShardPasses; ++pass) {
      ForwardOptions fo;
      fo.training = true;
      std::vector<float> logp(T), dlogp;
      model.forward(b, fo, logp.data(), nullptr, nullptr);
      out.push_back({"logp", std::vector<float>(logp.begin() + rank * rows, logp.begin() + (rank + 1) * rows)});
      for (const auto& d : draws) {
        const std::vector<float>& mine = d->dlogp[step * kShardPasses + pass];
        dlogp.insert(dlogp.end(), mine.begin(), mine.end());
      }
      model.backward(dlogp.data(), T, nullptr);
    }
    AdamWConfig adam;
    adam.lr = 1e-3f;
    const StepResult r = model.optimizer_step(adam, 0.5f, std::vector<bool>(model.params().size(), true));
    out.push_back({"norm", {static_cast<float>(r.grad_norm)}});
  }
  std::vector<float> m(model.optimizer_floats()), v(m.size());
  model.get_optimizer_state(m.data(), v.data());
  out.push_back({"adam_m", m});
  out.push_back({"gathered weights", every_param(model, &Qwen3Model::get_param)});
  return out;
}

// The largest |sharded - one process| over the outputs both have, by name, scaled by each name's tolerance
// (absolute; relative to the value for the norms): above 1 fails. The weights' tolerance is the MPI test's
// (test/distributed/full-shard.test.ts): AdamW's sign-like early steps turn summation-order noise in a
// near-zero gradient into up to 2 lr. The first moments are held to 1e-4 of the largest, where the weights
// alone would not see a gradient of the wrong size (AdamW's step does not depend on its scale).
double worst_against_one_process(const Outputs& sharded, const Outputs& one) {
  const std::map<std::string, double> tol = {
      {"logp", 1e-5}, {"norm", 1e-4}, {"adam_m", 1e-4}, {"gathered weights", 1e-3}};
  double worst = 0;
  std::map<std::string, size_t> seen;
  for (const auto& [name, want] : one) {
    size_t k = seen[name]++;
    const std::vector<float>* got = nullptr;
    for (const auto& o : sharded)
      if (o.first == name && k-- == 0) {
        got = &o.second;
        break;
      }
    if (!got || got->size() != want.size()) return INFINITY;
    double largest = 0;
    for (float x : want) largest = std::max(largest, static_cast<double>(std::fabs(x)));
    for (size_t i = 0; i < want.size(); ++i) {
      if ((*got)[i] == kNotMine) continue;
      const double scale = name == "norm" ? std::fabs(want[i]) : name == "adam_m" ? largest : 1.0;
      worst = std::max(worst, std::fabs((*got)[i] - want[i]) / (tol.at(name) * scale));
    }
  }
  return worst;
}

Qwen3Config dense(bool tie) {
  Qwen3Config c;
  c.vocab = 300, c.hidden = 64, c.intermediate = 96, c.layers = 2, c.heads = 4, c.kv_heads = 2, c.head_dim = 32;
  c.rope_theta = 10000.0f;
  c.tie_embeddings = tie;
  return c;
}
Qwen3Config moe() {
  Qwen3Config c = dense(false);
  c.layers = 3, c.experts = 8, c.experts_per_token = 2, c.moe_intermediate = 48, c.mlp_only_layers = {1};
  return c;
}

}  // namespace

// The guard fills alloc_uninit's memory with NaN, so a model that reads such a buffer before writing it
// differs from the CPU here. That only holds while the fill is there: checked first.
bool uninit_is_poisoned(GuardBackend& guard) {
  const int64_t n = 5;
  const BackendArray<float> a = BackendArray<float>::uninit(guard, n);
  std::vector<float> host(n);
  guard.to_host(host.data(), a.get(), sizeof(float) * n);
  for (float v : host)
    if (!std::isnan(v)) return false;
  return true;
}

// A reservation whose backing fails part way (a GPU out of memory) keeps no count of it, and gives back the runs
// the same acquisition backed before the failure; acquiring and releasing work afterwards. Returns the failures.
int reservation_rolls_back() {
  struct Failing final : Reservation {
    std::set<int64_t> backed_granules;
    int calls = 0, fail_at = -1;
    Failing() : Reservation(nullptr, 8 * 16, 16) {}
    void back(int64_t first, int64_t count) override {
      if (calls++ == fail_at) throw Error("out of memory (test)");
      for (int64_t g = first; g < first + count; ++g) backed_granules.insert(g);
    }
    void unback(int64_t first, int64_t count) override {
      for (int64_t g = first; g < first + count; ++g) backed_granules.erase(g);
    }
  } r;
  r.acquire(0, 16);   // granule 0
  r.acquire(32, 16);  // granule 2
  r.fail_at = r.calls + 1;
  bool threw = false;
  try {
    r.acquire(0, 64);  // backs granule 1, then fails on granule 3
  } catch (const Error&) {
    threw = true;
  }
  int bad = 0;
  auto expect = [&](bool ok, const char* what) {
    if (!ok) printf("reservation after a failed backing: %s\n", what), ++bad;
  };
  expect(threw, "the acquisition did not throw");
  expect(r.backed_granules == std::set<int64_t>{0, 2}, "granule 1 (backed before the failure) stayed backed");
  expect(r.resident_bytes() == 32 && !r.backed(16) && !r.backed(48), "the failed range counts as backed");
  r.acquire(0, 64);
  expect(r.backed_granules == std::set<int64_t>{0, 1, 2, 3} && r.resident_bytes() == 64, "acquiring again failed");
  r.release(0, 64);
  r.release(0, 16);
  expect(r.backed_granules == std::set<int64_t>{2} && r.resident_bytes() == 16, "releasing miscounted");
  return bad;
}

// The guard must catch what it exists to catch, or the zero violations below mean nothing: a host
// pointer where the contract says backend memory, backend memory where it says host (an argument, and a
// member of each argument struct that holds pointers), released memory, a copy past an allocation's end, and
// reserved memory not acquired (an op's pointer, a copy's range). Each call must throw, naming op and argument.
int catches_violations(GuardBackend& guard) {
  guard.strict = true;
  std::vector<float> host(8);
  const BackendArray<float> dev(guard, 8), wide(guard, 16);
  BackendArray<float> released(guard, 8);
  float* stale = released.get();
  released.reset();
  const BackendArray<double> dev_counts(guard, 8);
  const BackendArray<int32_t> dev_cu(guard, 2);
  AttentionShape att;
  att.T = 1, att.n_heads = att.n_kv_heads = 1, att.head_dim = 8, att.n_seqs = 1;
  att.cu_seqlens = dev_cu.get();
  att.cu_seqlens_host = dev_cu.get();
  const MoeShape moe;
  const int32_t host_cu[2] = {0, 1};
  RopeSpec rope;
  rope.head_dim = 8;
  rope.freq_component = reinterpret_cast<const uint8_t*>(dev_cu.get());
  PagedAttentionShape paged;
  paged.block_tables = host_cu;
  const BackendArray<SamplerParams> dev_params(guard, 1);
  const int64_t offsets[2] = {0, 0};
  SampleBatch batch;
  batch.rows = 1, batch.vocab = 8, batch.params = dev_params.get(), batch.history_offsets = offsets;
  struct Check {
    const char* want;
    std::function<void()> call;
  };
  const int64_t page = sysconf(_SC_PAGESIZE);
  const std::unique_ptr<Reservation> reserved = guard.reserve(4 * page);
  reserved->acquire(0, page);
  float* first_page = reinterpret_cast<float*>(reserved->data());
  float* not_acquired = reinterpret_cast<float*>(reserved->data() + 2 * page);
  const std::vector<Check> checks = {
      {"add_inplace: dst is not backend memory", [&] { guard.run<AddInplace>(host.data(), dev.get(), int64_t(8)); }},
      {"add_inplace: src points into released backend memory",
       [&] { guard.run<AddInplace>(dev.get(), stale, int64_t(8)); }},
      {"moe_aux_backward: counts must be host memory but is backend memory",
       [&] { guard.run<MoeAuxBackward>(dev.get(), dev.get(), dev_counts.get(), host_cu, 1, 1, 1.0f, moe); }},
      {"attention_forward: s.cu_seqlens_host must be host memory but is backend memory",
       [&] { guard.run<AttentionForward>(dev.get(), dev.get(), dev.get(), dev.get(), dev.get(), att); }},
      {"rope_forward: spec.freq_component must be host memory but is backend memory",
       [&] { guard.run<RopeForward>(dev.get(), dev.get(), dev_cu.get(), 1, 1, rope); }},
      {"paged_attention_forward: s.block_tables is not backend memory",
       [&] { guard.run<PagedAttentionForward>(dev.get(), dev.get(), dev.get(), dev.get(), paged); }},
      {"copy: dst: 64 bytes run past its allocation", [&] { guard.copy_bytes(dev.get(), wide.get(), 64); }},
      {"add_inplace: dst points into reserved memory not acquired",
       [&] { guard.run<AddInplace>(not_acquired, dev.get(), int64_t(8)); }},
      {"copy: dst: 64 bytes run into reserved memory not acquired",
       [&] { guard.copy_bytes(first_page + page / 4 - 8, wide.get(), 64); }},
      {"sample: b.params must be host memory but is backend memory",
       [&] { guard.run<Sample>(dev_cu.get(), dev.get(), dev.get(), batch); }},
  };
  int missed = 0;
  for (const Check& c : checks) {
    std::string got = "no error";
    try {
      c.call();
    } catch (const std::exception& e) {
      got = e.what();
    }
    if (got.find(c.want) == std::string::npos) {
      printf("the guard missed a contract violation: want \"%s\", got \"%s\"\n", c.want, got.c_str());
      ++missed;
    }
  }
  guard.strict = false;
  guard.violations = 0;
  return missed;
}

// Rank `rank` of the full-sharding cases, in its own process: each case on the CPU backend with host buffers,
// then on its own guard with the buffers moved as device memory, the outputs compared bit for bit. A rank
// that throws ends at once (its peer would wait in a collective forever; the parent ends it).
int full_shard_rank(ForkShared& shared, int rank) {
  GuardBackend guard;
  ForkRanks host(shared, rank, nullptr), device(shared, rank, &guard);
  struct Case {
    const char* name;
    Qwen3Config cfg;
    bool recompute;
    ComputeDType dtype;
  };
  Qwen3Config moe_tied = moe();
  moe_tied.tie_embeddings = true;
  int bad = 0;
  for (const Case& k : {Case{"dense", dense(false), false, ComputeDType::f32},
                        Case{"vl", with_test_vision(dense(false)), false, ComputeDType::f32},
                        Case{"moe recompute", moe(), true, ComputeDType::f32},
                        Case{"moe tied recompute bf16", moe_tied, true, ComputeDType::bf16},
                        Case{"vl bf16", with_test_vision(dense(false)), false, ComputeDType::bf16}}) {
    Outputs want, got;
    try {
      want = run_full_shard(cpu_backend(), host, host, k.cfg, k.recompute, k.dtype);
      got = run_full_shard(guard, device, host, k.cfg, k.recompute, k.dtype);
    } catch (const std::exception& e) {
      printf("full shard %s rank %d: threw: %s\n", k.name, rank, e.what());
      fflush(stdout);
      std::_Exit(1);
    }
    int diffs = 0;
    for (size_t i = 0; i < want.size(); ++i)
      if (want[i].second != got[i].second) {
        printf("full shard %s rank %d: output %s differs\n", k.name, rank, want[i].first.c_str());
        ++diffs;
      }
    // In f32 the sharded steps are the one-process steps on all ranks' batches (bf16 rounds every op's
    // weights when sharded, only the linear layers' without: test/model/full-shard.test.ts compares those).
    if (k.dtype == ComputeDType::f32) {
      const double worst = worst_against_one_process(want, run_one_process(k.cfg, k.recompute, rank, shared.kRanks));
      printf("full shard %s rank %d: against one process on all ranks' batches, worst %.3g of tolerance\n", k.name,
             rank, worst);
      bad += !(worst <= 1.0);
    }
    for (const auto& [name, values] : got)
      if (name == "parts cover the layout" && values[0] != 1.0f) {
        printf("full shard %s rank %d: the ranks' parts do not cover the layout once\n", k.name, rank);
        ++bad;
      }
    const float resident = got.back().second[0];
    if (resident != 0) printf("full shard %s rank %d: %g bytes stay gathered after release\n", k.name, rank, resident);
    printf("full shard %s rank %d: %zu outputs, %d differ; backend ops %lld, gathered after release %g bytes\n", k.name,
           rank, want.size(), diffs, static_cast<long long>(guard.op_count), resident);
    bad += diffs + (resident != 0);
  }
  printf("full shard rank %d: contract violations %d\n", rank, guard.violations);
  return bad + guard.violations;
}

// The ranks as forked processes, before this process starts any thread (the CPU ops' pool would not
// survive a fork). Returns the ranks that failed.
int full_shard_ranks() {
  fflush(stdout);
  ForkShared* shared = ForkShared::make();
  std::vector<pid_t> pids;
  for (int r = 0; r < ForkShared::kRanks; ++r) {
    const pid_t pid = fork();
    if (pid == 0) {
      alarm(120);  // a rank left waiting in a collective ends (the cases take seconds)
      const int bad = full_shard_rank(*shared, r);
      fflush(stdout);
      std::_Exit(bad ? 1 : 0);
    }
    pids.push_back(pid);
  }
  int failed = 0;
  for (size_t done = 0; done < pids.size(); ++done) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    printf("full shard: rank process %d ended with %s %d\n", static_cast<int>(pid),
           WIFSIGNALED(status) ? "signal" : "status", WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    ++failed;
    for (pid_t other : pids)
      if (other != pid) kill(other, SIGKILL);
  }
  return failed;
}

int main() {
  int bad = full_shard_ranks();
  GuardBackend guard;
  if (!uninit_is_poisoned(guard)) {
    printf("the guard's alloc_uninit is not filled with NaN: reads of unwritten memory would go unseen\n");
    ++bad;
  }
  bad += catches_violations(guard);
  bad += reservation_rolls_back();
  struct Case {
    const char* name;
    Qwen3Config cfg;
    bool recompute;
    ComputeDType dtype;
    bool data_parallel = false;
  };
  const ComputeDType f32 = ComputeDType::f32, bf16 = ComputeDType::bf16;
  for (const Case& k :
       {Case{"dense", dense(false), false, f32}, Case{"dense tied recompute", dense(true), true, f32},
        Case{"moe", moe(), false, f32}, Case{"moe recompute", moe(), true, f32},
        Case{"dense bf16", dense(false), false, bf16}, Case{"vl", with_test_vision(dense(false)), false, f32},
        Case{"vl recompute bf16", with_test_vision(dense(false)), true, bf16},
        Case{"moe tied bf16 recompute",
             [] {
               Qwen3Config c = moe();
               c.tie_embeddings = true;
               return c;
             }(),
             true, bf16},
        Case{"dense data parallel", dense(false), false, f32, true},
        Case{"moe bf16 data parallel", moe(), false, bf16, true}}) {
    Outputs want, got;
    try {
      want = run(cpu_backend(), k.cfg, k.recompute, k.dtype, k.data_parallel);
      got = run(guard, k.cfg, k.recompute, k.dtype, k.data_parallel);
    } catch (const std::exception& e) {
      printf("%s: threw: %s\n", k.name, e.what());
      ++bad;
      continue;
    }
    int diffs = 0;
    for (size_t i = 0; i < want.size(); ++i)
      if (want[i].second != got[i].second) {
        printf("%s: output %s differs\n", k.name, want[i].first.c_str());
        ++diffs;
      }
    printf("%s: %zu outputs, %d differ; backend ops %lld, live allocations after %zu\n", k.name, want.size(), diffs,
           static_cast<long long>(guard.op_count), guard.live());
    bad += diffs;
  }
  printf("contract violations: %d, failures: %d\n", guard.violations, bad);
  return bad || guard.violations ? 1 : 0;
}
