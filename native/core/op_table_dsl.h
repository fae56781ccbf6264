// Shorthands the op table is written in (op_table*.cc only): argument and option declarations.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "op_registry.h"

namespace medix::op_decl {

// Upper bounds on sizes keep every product of two or three of them far from int64 overflow.
constexpr double kMaxTokens = 2147483647.0;
constexpr double kMaxDim = 16777216.0;
constexpr double kMaxHeads = 4096;

// An op family's entry in `dtype` on the given backends; its passes are filled in after.
inline OpDef family(const char* name, std::vector<const char*> backends = {"cpu", "cuda"}, DType dtype = DType::F32) {
  OpDef d;
  d.family = name;
  d.dtype = dtype;
  d.backends = std::move(backends);
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

// The tables of op_table.cc (decoder layers, attention, head, optimizer) and op_table_vision.cc
// (vision tower, mixture of experts), joined by op_table().
void add_decoder_ops(std::vector<OpDef>& table);
void add_vision_and_moe_ops(std::vector<OpDef>& table);

}  // namespace medix::op_decl
