// Shorthands the op table is written in (each family's entries, at the end of native/ops/<family>.cc):
// argument and option declarations, and the registration of an entry.
#pragma once
#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "backend_op.h"
#include "error.h"
#include "op_registry.h"

namespace medix::op_decl {

// Upper bounds on sizes keep every product of two or three of them far from int64 overflow.
constexpr double kMaxTokens = 2147483647.0;
constexpr double kMaxDim = 16777216.0;
constexpr double kMaxHeads = 4096;

// The ids of backend ops Op..., for an entry's `ops`.
template <class... Op>
std::vector<int> op_ids() {
  return {Op::id()...};
}

// An op family's entry in `dtype`, whose passes run backend ops `ops` (op_ids<...>()); its passes are
// filled in after.
inline OpDef family(const char* name, std::vector<int> ops, DType dtype = DType::F32) {
  OpDef d;
  d.family = name;
  d.dtype = dtype;
  d.ops = std::move(ops);
  return d;
}

inline ArgSpec in(const char* name, const char* shape) { return {name, DType::F32, Role::In, shape}; }
inline ArgSpec in_opt(const char* name, const char* shape) {
  ArgSpec s = in(name, shape);
  s.optional = true;
  return s;
}
// An input in the entry's storage dtype (bf16 weights, a bf16 KV cache): any ArgSpec with its dtype set.
inline ArgSpec typed(ArgSpec s, DType dtype) {
  s.dtype = dtype;
  return s;
}
inline ArgSpec out(const char* name, const char* shape, const char* when = nullptr) {
  ArgSpec s{name, DType::F32, Role::Out, shape};
  s.optional = when != nullptr;
  s.when = when;
  return s;
}
inline ArgSpec inout(const char* name, const char* shape, Values v = Values::Finite) {
  ArgSpec s{name, DType::F32, Role::InOut, shape, v};
  return s;
}
inline ArgSpec out_i32(const char* name, const char* shape) { return {name, DType::I32, Role::Out, shape}; }
// Token ids / targets: i32 in [lo, option bound).
inline ArgSpec ids(const char* name, const char* shape, int32_t lo, const char* bound) {
  return {name, DType::I32, Role::In, shape, Values::Ids, bound, lo};
}
// Packed-sequence offsets ending at option `total`.
inline ArgSpec offsets(const char* name, const char* total) {
  return {name, DType::I32, Role::In, "", Values::Offsets, total};
}
// Positions, coordinates: any i32.
inline ArgSpec positions(const char* name, const char* shape) {
  return {name, DType::I32, Role::In, shape, Values::Free};
}

inline AttrSpec integer(const char* name, double lo, double hi) { return {name, AttrKind::Int, true, 0, lo, hi, {}}; }
inline AttrSpec integer_or(const char* name, double lo, double hi, double dflt) {
  return {name, AttrKind::Int, false, dflt, lo, hi, {}};
}
inline AttrSpec number(const char* name) { return {name, AttrKind::Number, true, 0, 0, 0, {}}; }
inline AttrSpec number_or(const char* name, double dflt) { return {name, AttrKind::Number, false, dflt, 0, 0, {}}; }
inline AttrSpec boolean_or(const char* name, bool dflt) {
  return {name, AttrKind::Bool, false, dflt ? 1.0 : 0.0, 0, 0, {}};
}
inline AttrSpec choice_or(const char* name, std::vector<const char*> choices, int dflt) {
  return {name, AttrKind::Choice, false, static_cast<double>(dflt), 0, 0, std::move(choices)};
}
inline AttrSpec list_opt(const char* name) { return {name, AttrKind::IntList, false, 0, 0, 0, {}}; }

using Lengths = std::map<std::string, int64_t>;

// The check of an `eps` option (norms).
inline void positive_eps(Attrs& a, const Lengths&) {
  MEDIX_CHECK(a.f("eps") > 0, "option 'eps' must be > 0, got ", a.f("eps"));
}

// Attention's options over packed queries (attention, paged_attention): heads a multiple of kvHeads, T from
// q's length, scale 1/sqrt(headDim) unless given.
inline void attention_shape(Attrs& a, const Lengths& lengths) {
  const int64_t heads = a.i("heads"), kv_heads = a.i("kvHeads"), row = heads * a.i("headDim");
  MEDIX_CHECK(heads % kv_heads == 0, "option 'heads' (", heads, ") must be a multiple of 'kvHeads' (", kv_heads, ")");
  const int64_t n = lengths.at("q");
  MEDIX_CHECK(n % row == 0, "q length ", n, " is not a multiple of heads*headDim (", row, ")");
  a.num["T"] = static_cast<double>(n / row);
  if (std::isnan(a.f("scale"))) a.num["scale"] = 1.0 / std::sqrt(static_cast<double>(a.i("headDim")));
  MEDIX_CHECK(a.f("scale") > 0, "option 'scale' must be > 0, got ", a.f("scale"));
}

// Adds an entry to the table, from its family's file (native/ops/<family>.cc): no list to extend.
bool register_op_def(OpDef (*make)());
#define MEDIX_OP_TABLE_ENTRY(make)                                                         \
  [[maybe_unused]] static const bool MEDIX_OP_CONCAT(medix_op_table_entry_, __COUNTER__) = \
      ::medix::op_decl::register_op_def(make)

}  // namespace medix::op_decl
