// The op table's decoder entries: embedding, RMSNorm, linear, rotary, SwiGLU, residual add,
// attention, the fused log-prob head and the optimizer. Semantics are documented once, in
// native/ops/<family>.h; each entry states arguments, options and their checks, and calls the Backend.
#include <cmath>

#include "../ops/adamw.h"
#include "../ops/attention.h"
#include "../ops/embedding.h"
#include "../ops/linear.h"
#include "../ops/logprob.h"
#include "../ops/paged_attention.h"
#include "../ops/residual.h"
#include "../ops/rmsnorm.h"
#include "../ops/rope.h"
#include "../ops/swiglu.h"
#include "error.h"
#include "op_table_dsl.h"

namespace medix::op_decl {
namespace {

using Lengths = std::map<std::string, int64_t>;

// ---------------------------------------------------------------------------------------------
// Layers

void positive_eps(Attrs& a, const Lengths&) {
  MEDIX_CHECK(a.f("eps") > 0, "option 'eps' must be > 0, got ", a.f("eps"));
}

OpDef embedding() {
  const std::vector<AttrSpec> attrs = {integer("vocab", 1, kMaxTokens), integer("dim", 1, kMaxDim)};
  OpDef d = family("embedding");
  d.forward = {"embeddingForward",
               {ids("ids", "", 0, "vocab"), in("table", "vocab*dim"), out("out", "ids.length*dim")},
               attrs,
               nullptr,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<EmbeddingForward>(t.f("out"), t.i("ids"), t.f("table"), t.n("ids"), a.i("dim"));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"embeddingBackward",
                {in("dout", "ids.length*dim"), ids("ids", "", 0, "vocab"), out("dtable", "vocab*dim")},
                attrs,
                nullptr,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<EmbeddingBackward>(t.f("dtable"), t.f("dout"), t.i("ids"), t.n("ids"), a.i("dim"));
                  return 0.0;
                }};
  return d;
}

OpDef rmsnorm() {
  const std::vector<AttrSpec> shape = {integer("rows", 1, kMaxTokens), integer("dim", 1, kMaxDim)};
  std::vector<AttrSpec> fwd_attrs = shape;
  fwd_attrs.push_back(number("eps"));
  OpDef d = family("rmsnorm");
  d.forward = {"rmsnormForward",
               {in("x", "rows*dim"), in("w", "dim"), out("out", "rows*dim"), out("rstd", "rows")},
               fwd_attrs,
               positive_eps,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<RmsnormForward>(t.f("out"), t.f("rstd"), t.f("x"), t.f("w"), a.i("rows"), a.i("dim"),
                                        static_cast<float>(a.f("eps")));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"rmsnormBackward",
                {in("dout", "rows*dim"), in("x", "rows*dim"), in("w", "dim"), in("rstd", "rows"), out("dx", "rows*dim"),
                 out("dw", "dim")},
                shape,
                nullptr,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<RmsnormBackward>(t.f("dx"), t.f("dw"), t.f("dout"), t.f("x"), t.f("w"), t.f("rstd"),
                                          a.i("rows"), a.i("dim"));
                  return 0.0;
                }};
  return d;
}

std::vector<AttrSpec> linear_attrs(bool backward) {
  std::vector<AttrSpec> a = {integer("T", 1, kMaxTokens), integer("in", 1, kMaxDim), integer("out", 1, kMaxDim)};
  if (backward) a.push_back(boolean_or("bias", false));
  return a;
}

double linear_forward_f32(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<LinearForward>(t.f("y"), t.f("x"), t.f("W"), t.f("b"), a.i("T"), a.i("in"), a.i("out"));
  return 0.0;
}
double linear_forward_bf16(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<LinearForwardBf16>(t.f("y"), t.f("x"), t.h("W"), t.f("b"), a.i("T"), a.i("in"), a.i("out"));
  return 0.0;
}
double linear_backward_f32(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<LinearBackward>(t.f("dx"), t.f("dW"), t.f("db"), t.f("dy"), t.f("x"), t.f("W"), a.i("T"), a.i("in"),
                         a.i("out"));
  return 0.0;
}
double linear_backward_bf16(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<LinearBackwardBf16>(t.f("dx"), t.f("dW"), t.f("db"), t.f("dy"), t.f("x"), t.h("W"), a.i("T"), a.i("in"),
                             a.i("out"));
  return 0.0;
}

// W in the entry's dtype: f32, or bf16 (a compute copy; linear.h's *_bf16: f32 activations and sums).
OpDef linear(DType dtype) {
  const bool bf16 = dtype == DType::BF16;
  const ArgSpec W = typed(in("W", "out*in"), dtype);
  OpDef d = family("linear", {"cpu", "cuda"}, dtype);
  d.forward = {bf16 ? "linearForwardBf16" : "linearForward",
               {in("x", "T*in"), W, in_opt("b", "out"), out("y", "T*out")},
               linear_attrs(false),
               nullptr,
               bf16 ? linear_forward_bf16 : linear_forward_f32};
  d.has_backward = true;
  d.backward = {
      bf16 ? "linearBackwardBf16" : "linearBackward",
      {in("dy", "T*out"), in("x", "T*in"), W, out("dx", "T*in"), out("dW", "out*in"), out("db", "out", "bias")},
      linear_attrs(true),
      nullptr,
      bf16 ? linear_backward_bf16 : linear_backward_f32};
  return d;
}
OpDef linear_f32() { return linear(DType::F32); }
OpDef linear_bf16() { return linear(DType::BF16); }

// Rotary embedding: positions are [T], or [3, T] with multi-section options.
int64_t rope_positions(const Attrs& a, std::string* desc) {
  const bool sections = a.list("sections") != nullptr;
  *desc = sections ? "3*T" : "T";
  return (sections ? 3 : 1) * a.i("T");
}

std::vector<uint8_t> rope_map(const Attrs& a) {
  const std::vector<int64_t>* sections = a.list("sections");
  return sections ? rope_section_map(a.i("headDim"), *sections, a.b("interleaved")) : std::vector<uint8_t>{};
}

void check_rope(Attrs& a, const Lengths&) {
  MEDIX_CHECK(a.i("headDim") % 2 == 0, "option 'headDim' must be even, got ", a.i("headDim"));
  MEDIX_CHECK(a.f("theta") > 0, "option 'theta' must be > 0, got ", a.f("theta"));
  try {
    rope_map(a);
  } catch (const Error& e) {
    fail("option 'sections' is invalid: ", e.what());
  }
}

RopeSpec rope_spec(const Attrs& a, const std::vector<uint8_t>& map) {
  RopeSpec s;
  s.head_dim = a.i("headDim");
  s.theta = static_cast<float>(a.f("theta"));
  if (!map.empty()) {
    s.n_components = 3;
    s.freq_component = map.data();
  }
  return s;
}

OpDef rope() {
  const std::vector<AttrSpec> attrs = {
      integer("T", 1, kMaxTokens), integer("heads", 1, kMaxHeads),  integer("headDim", 2, kMaxHeads), number("theta"),
      list_opt("sections"),        boolean_or("interleaved", false)};
  ArgSpec pos = positions("pos", "");
  pos.length_fn = rope_positions;
  OpDef d = family("rope");
  d.forward = {"ropeForward",
               {in("x", "T*heads*headDim"), pos, out("out", "T*heads*headDim")},
               attrs,
               check_rope,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 const std::vector<uint8_t> map = rope_map(a);
                 be.run<RopeForward>(t.f("out"), t.f("x"), t.i("pos"), a.i("T"), a.i("heads"), rope_spec(a, map));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"ropeBackward",
                {in("dout", "T*heads*headDim"), pos, out("dx", "T*heads*headDim")},
                attrs,
                check_rope,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  const std::vector<uint8_t> map = rope_map(a);
                  be.run<RopeBackward>(t.f("dx"), t.f("dout"), t.i("pos"), a.i("T"), a.i("heads"), rope_spec(a, map));
                  return 0.0;
                }};
  return d;
}

OpDef swiglu() {
  OpDef d = family("swiglu");
  d.forward = {"swigluForward",
               {in("gate", ""), in("up", "gate.length"), out("out", "gate.length")},
               {},
               nullptr,
               [](Backend& be, const Attrs&, const Tensors& t) {
                 be.run<SwigluForward>(t.f("out"), t.f("gate"), t.f("up"), t.n("gate"));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"swigluBackward",
                {in("dout", ""), in("gate", "dout.length"), in("up", "dout.length"), out("dgate", "dout.length"),
                 out("dup", "dout.length")},
                {},
                nullptr,
                [](Backend& be, const Attrs&, const Tensors& t) {
                  be.run<SwigluBackward>(t.f("dgate"), t.f("dup"), t.f("dout"), t.f("gate"), t.f("up"), t.n("dout"));
                  return 0.0;
                }};
  return d;
}

// The residual connection. Its backward passes dout to both inputs, which callers do with add_inplace.
OpDef add() {
  OpDef d = family("add");
  d.forward = {"addForward",
               {in("a", ""), in("b", "a.length"), out("out", "a.length")},
               {},
               nullptr,
               [](Backend& be, const Attrs&, const Tensors& t) {
                 be.run<AddForward>(t.f("out"), t.f("a"), t.f("b"), t.n("a"));
                 return 0.0;
               }};
  return d;
}

OpDef add_inplace() {
  OpDef d = family("add_inplace");
  d.forward = {"addInplace",
               {inout("dst", ""), in("src", "dst.length")},
               {},
               nullptr,
               [](Backend& be, const Attrs&, const Tensors& t) {
                 be.run<AddInplace>(t.f("dst"), t.f("src"), t.n("dst"));
                 return 0.0;
               }};
  return d;
}

// ---------------------------------------------------------------------------------------------
// Attention over packed sequences: T from q's length.

void attention_shape(Attrs& a, const Lengths& lengths) {
  const int64_t heads = a.i("heads"), kv_heads = a.i("kvHeads"), row = heads * a.i("headDim");
  MEDIX_CHECK(heads % kv_heads == 0, "option 'heads' (", heads, ") must be a multiple of 'kvHeads' (", kv_heads, ")");
  const int64_t n = lengths.at("q");
  MEDIX_CHECK(n % row == 0, "q length ", n, " is not a multiple of heads*headDim (", row, ")");
  a.num["T"] = static_cast<double>(n / row);
  if (std::isnan(a.f("scale"))) a.num["scale"] = 1.0 / std::sqrt(static_cast<double>(a.i("headDim")));
  MEDIX_CHECK(a.f("scale") > 0, "option 'scale' must be > 0, got ", a.f("scale"));
}

AttentionShape attention(const Attrs& a, const Tensors& t) {
  AttentionShape s{a.i("T"),
                   a.i("heads"),
                   a.i("kvHeads"),
                   a.i("headDim"),
                   t.i("cuSeqlens"),
                   t.n("cuSeqlens") - 1,
                   static_cast<float>(a.f("scale")),
                   a.b("causal")};
  s.bf16_operands = a.b("bf16Operands");
  return s;
}

OpDef attention_op() {
  const std::vector<AttrSpec> attrs = {integer("heads", 1, kMaxHeads), integer("kvHeads", 1, kMaxHeads),
                                       integer("headDim", 1, 65536),   number_or("scale", NAN),
                                       boolean_or("causal", true),     boolean_or("bf16Operands", false)};
  const ArgSpec q = in("q", "T*heads*headDim"), k = in("k", "T*kvHeads*headDim"), v = in("v", "T*kvHeads*headDim");
  const ArgSpec cu = offsets("cuSeqlens", "T");
  OpDef d = family("attention");
  d.forward = {"attentionForward",
               {q, k, v, cu, out("out", "T*heads*headDim"), out("lse", "T*heads")},
               attrs,
               attention_shape,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<AttentionForward>(t.f("out"), t.f("lse"), t.f("q"), t.f("k"), t.f("v"), attention(a, t));
                 return 0.0;
               }};
  d.has_backward = true;
  d.backward = {"attentionBackward",
                {in("dout", "T*heads*headDim"), in("out", "T*heads*headDim"), in("lse", "T*heads"), q, k, v, cu,
                 out("dq", "T*heads*headDim"), out("dk", "T*kvHeads*headDim"), out("dv", "T*kvHeads*headDim")},
                attrs,
                attention_shape,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  be.run<AttentionBackward>(t.f("dq"), t.f("dk"), t.f("dv"), t.f("dout"), t.f("out"), t.f("lse"),
                                            t.f("q"), t.f("k"), t.f("v"), attention(a, t));
                  return 0.0;
                }};
  return d;
}

// ---------------------------------------------------------------------------------------------
// Inference over a paged KV cache (paged_attention.h), the cache in the entry's dtype: f32, or bf16
// (the cache follows the compute dtype). The cache's slot count, the block tables' sequences and the
// keys a table can reach are derived from the lengths, so every index is checked against them.

void kv_cache_shape(Attrs& a, const Lengths& lengths) {
  const int64_t kv_dim = a.i("kvDim"), k = lengths.at("k"), cache = lengths.at("kCache");
  MEDIX_CHECK(k % kv_dim == 0, "k length ", k, " is not a multiple of kvDim (", kv_dim, ")");
  MEDIX_CHECK(cache % kv_dim == 0, "kCache length ", cache, " is not a multiple of kvDim (", kv_dim, ")");
  a.num["T"] = static_cast<double>(k / kv_dim);
  a.num["nSlots"] = static_cast<double>(cache / kv_dim);
}

double kv_cache_write_f32_run(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<KvCacheWrite>(t.f("kCache"), t.f("vCache"), t.f("k"), t.f("v"), t.i("slots"), a.i("T"), a.i("kvDim"));
  return 0.0;
}
double kv_cache_write_bf16_run(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<KvCacheWriteBf16>(t.h("kCache"), t.h("vCache"), t.f("k"), t.f("v"), t.i("slots"), a.i("T"), a.i("kvDim"));
  return 0.0;
}

OpDef kv_cache_write(DType dtype) {
  const bool bf16 = dtype == DType::BF16;
  OpDef d = family("kv_cache_write", {"cpu", "cuda"}, dtype);
  d.forward = {bf16 ? "kvCacheWriteBf16" : "kvCacheWrite",
               {typed(inout("kCache", ""), dtype), typed(inout("vCache", "kCache.length"), dtype), in("k", ""),
                in("v", "k.length"), ids("slots", "T", 0, "nSlots")},
               {integer("kvDim", 1, kMaxDim)},
               kv_cache_shape,
               bf16 ? kv_cache_write_bf16_run : kv_cache_write_f32_run};
  return d;
}
OpDef kv_cache_write_f32() { return kv_cache_write(DType::F32); }
OpDef kv_cache_write_bf16() { return kv_cache_write(DType::BF16); }

void paged_attention_shape(Attrs& a, const Lengths& lengths) {
  attention_shape(a, lengths);
  const int64_t block = a.i("blockSize") * a.i("kvHeads") * a.i("headDim"), cache = lengths.at("kCache");
  MEDIX_CHECK(cache % block == 0, "kCache length ", cache, " is not a whole number of blocks of blockSize*kvHeads*",
              "headDim (", block, ")");
  const int64_t tables = lengths.at("blockTables"), max_blocks = a.i("maxBlocks");
  MEDIX_CHECK(tables % max_blocks == 0, "blockTables length ", tables, " is not a multiple of maxBlocks (", max_blocks,
              ")");
  a.num["blocks"] = static_cast<double>(cache / block);
  a.num["seqs"] = static_cast<double>(tables / max_blocks);
  a.num["keysBound"] = static_cast<double>(max_blocks * a.i("blockSize") + 1);  // n_keys <= a table's slots
}

PagedAttentionShape paged_attention(const Attrs& a, const Tensors& t) {
  return {a.i("T"),           a.i("heads"),     a.i("kvHeads"),    a.i("headDim"), a.i("blockSize"),
          t.i("blockTables"), a.i("maxBlocks"), t.i("seqOfToken"), t.i("nKeys"),   static_cast<float>(a.f("scale"))};
}

double paged_attention_f32_run(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<PagedAttentionForward>(t.f("out"), t.f("q"), t.f("kCache"), t.f("vCache"), paged_attention(a, t));
  return 0.0;
}
double paged_attention_bf16_run(Backend& be, const Attrs& a, const Tensors& t) {
  be.run<PagedAttentionForwardBf16>(t.f("out"), t.f("q"), t.h("kCache"), t.h("vCache"), paged_attention(a, t));
  return 0.0;
}

OpDef paged_attention_op(DType dtype) {
  const bool bf16 = dtype == DType::BF16;
  OpDef d = family("paged_attention", {"cpu", "cuda"}, dtype);
  d.forward = {bf16 ? "pagedAttentionForwardBf16" : "pagedAttentionForward",
               {in("q", "T*heads*headDim"), typed(in("kCache", ""), dtype), typed(in("vCache", "kCache.length"), dtype),
                ids("blockTables", "", 0, "blocks"), ids("seqOfToken", "T", 0, "seqs"),
                ids("nKeys", "T", 1, "keysBound"), out("out", "T*heads*headDim")},
               {integer("heads", 1, kMaxHeads), integer("kvHeads", 1, kMaxHeads), integer("headDim", 1, 65536),
                integer("blockSize", 1, 4096), integer("maxBlocks", 1, kMaxTokens), number_or("scale", NAN)},
               paged_attention_shape,
               bf16 ? paged_attention_bf16_run : paged_attention_f32_run};
  return d;
}
OpDef paged_attention_f32() { return paged_attention_op(DType::F32); }
OpDef paged_attention_bf16() { return paged_attention_op(DType::BF16); }

// ---------------------------------------------------------------------------------------------
// Fused log-probs and entropy of the LM head (logprob.h). T defaults to the targets' length.

std::vector<AttrSpec> logprob_attrs() {
  // tokenChunk and vocabChunk: 0 when not given, the direction's default (logprob.h).
  return {integer_or("T", 0, kMaxTokens, -1),
          integer("hidden", 1, kMaxDim),
          integer("vocab", 1, kMaxTokens),
          number_or("temperature", 1.0),
          integer_or("tokenChunk", 1, kMaxTokens, 0),
          integer_or("vocabChunk", 1, kMaxTokens, 0),
          boolean_or("entropy", false)};
}

void logprob_shape(Attrs& a, const Lengths& lengths) {
  const int64_t n = lengths.at("targets");
  if (a.i("T") < 0) a.num["T"] = static_cast<double>(n);
  MEDIX_CHECK(a.i("T") == n, "targets must have length T = ", a.i("T"), ", got ", n);
  MEDIX_CHECK(a.f("temperature") > 0, "option 'temperature' must be > 0, got ", a.f("temperature"));
}

void logprob_backward_shape(Attrs& a, const Lengths& lengths) {
  logprob_shape(a, lengths);
  MEDIX_CHECK(lengths.count("dentropy") == lengths.count("entropy"),
              "dentropy and entropy go together (give both or neither)");
}

LogprobShape logprob(const Attrs& a) {
  LogprobShape s;
  s.T = a.i("T");
  s.hidden = a.i("hidden");
  s.vocab = a.i("vocab");
  s.temperature = static_cast<float>(a.f("temperature"));
  s.token_chunk = a.i("tokenChunk");
  s.vocab_chunk = a.i("vocabChunk");
  return s;
}

std::vector<ArgSpec> logprob_forward_args() {
  return {in("hidden", "T*hidden"), in("head", "vocab*hidden"),    ids("targets", "", -1, "vocab"), out("logp", "T"),
          out("lse", "T"),          out("entropy", "T", "entropy")};
}

OpDef logprob_op() {
  OpDef d = family("logprob");
  d.forward = {"logprobForward", logprob_forward_args(), logprob_attrs(), logprob_shape,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 return static_cast<double>(be.run<LogprobForward>(
                     t.f("logp"), t.f("entropy"), t.f("lse"), t.f("hidden"), t.f("head"), t.i("targets"), logprob(a)));
               }};
  d.has_backward = true;
  d.backward = {"logprobBackward",
                {in("dlogp", "T"), in_opt("dentropy", "T"), in("hidden", "T*hidden"), in("head", "vocab*hidden"),
                 ids("targets", "", -1, "vocab"), in("lse", "T"), in_opt("entropy", "T"), out("dhidden", "T*hidden"),
                 out("dhead", "vocab*hidden")},
                logprob_attrs(),
                logprob_backward_shape,
                [](Backend& be, const Attrs& a, const Tensors& t) {
                  return static_cast<double>(be.run<LogprobBackward>(
                      t.f("dhidden"), t.f("dhead"), t.f("dlogp"), t.f("dentropy"), t.f("hidden"), t.f("head"),
                      t.i("targets"), t.f("lse"), t.f("entropy"), logprob(a)));
                }};
  return d;
}

// The unfused head (whole logits matrix): the reference the fused op is measured against. No
// backend implements it, so it is registered for the CPU only and calls the CPU function.
OpDef logprob_naive() {
  OpDef d = family("logprob_naive", {"cpu"});
  d.forward = {"logprobNaive", logprob_forward_args(), logprob_attrs(), logprob_shape,
               [](Backend&, const Attrs& a, const Tensors& t) {
                 return static_cast<double>(cpu::logprob_forward_naive(
                     t.f("logp"), t.f("entropy"), t.f("lse"), t.f("hidden"), t.f("head"), t.i("targets"), logprob(a)));
               }};
  return d;
}

// ---------------------------------------------------------------------------------------------
// Optimizer (adamw.h): updates in place. Defaults are AdamWConfig's.

AdamWConfig adamw_config(const Attrs& a) {
  AdamWConfig c;
  c.lr = static_cast<float>(a.f("lr"));
  c.beta1 = static_cast<float>(a.f("beta1"));
  c.beta2 = static_cast<float>(a.f("beta2"));
  c.eps = static_cast<float>(a.f("eps"));
  c.weight_decay = static_cast<float>(a.f("weightDecay"));
  return c;
}

OpDef adamw() {
  const AdamWConfig dflt;
  OpDef d = family("adamw");
  d.forward = {
      "adamwStep",
      {inout("p", ""), in("g", "p.length"), inout("m", "p.length"), inout("v", "p.length", Values::NonNegative)},
      {number("lr"), number_or("beta1", dflt.beta1), number_or("beta2", dflt.beta2), number_or("eps", dflt.eps),
       number_or("weightDecay", dflt.weight_decay), integer("step", 1, 9007199254740992.0), boolean_or("decay", true)},
      [](Attrs& a, const Lengths&) { check_adamw_config(adamw_config(a)); },
      [](Backend& be, const Attrs& a, const Tensors& t) {
        be.run<AdamwStep>(t.f("p"), t.f("g"), t.f("m"), t.f("v"), t.n("p"), adamw_config(a), a.i("step"), a.b("decay"));
        return 0.0;
      }};
  return d;
}

// The gradient norm's parts: sum of squares in double (+Inf/NaN when g holds one), and scaling.
OpDef sum_squares() {
  OpDef d = family("sum_squares");
  d.forward = {"sumSquares",
               {{"g", DType::F32, Role::In, "", Values::Any}},
               {},
               nullptr,
               [](Backend& be, const Attrs&, const Tensors& t) { return be.run<SumSquares>(t.f("g"), t.n("g")); }};
  return d;
}

OpDef scale() {
  OpDef d = family("scale");
  d.forward = {"scaleInPlace",
               {inout("g", "", Values::Any)},
               {number("s")},
               nullptr,
               [](Backend& be, const Attrs& a, const Tensors& t) {
                 be.run<ScaleInplace>(t.f("g"), static_cast<float>(a.f("s")), t.n("g"));
                 return 0.0;
               }};
  return d;
}

}  // namespace

void add_decoder_ops(std::vector<OpDef>& table) {
  for (OpDef (*make)() : {embedding, rmsnorm, linear_f32, linear_bf16, rope, swiglu, add, add_inplace, attention_op,
                          kv_cache_write_f32, kv_cache_write_bf16, paged_attention_f32, paged_attention_bf16,
                          logprob_op, logprob_naive, adamw, sum_squares, scale})
    table.push_back(make());
}

}  // namespace medix::op_decl

namespace medix {

const std::vector<OpDef>& op_table() {
  static const std::vector<OpDef> table = [] {
    std::vector<OpDef> t;
    op_decl::add_decoder_ops(t);
    op_decl::add_vision_and_moe_ops(t);
    return t;
  }();
  return table;
}

}  // namespace medix
