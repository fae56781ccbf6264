// The op table: every op family declares its forward and backward pass once (arguments with their
// shape rules and dtype, options with their ranges, the backend ops they run), and one runner
// validates a call against that declaration and runs it through a Backend. The N-API runOp binding,
// the tests behind it and the C++ conformance program (native/tests/op_conformance.cc) all go through
// here, so the same declaration checks input for every caller and runs on every backend.
// Entries are keyed by family and dtype: "linear" in f32 and "linear" in bf16 are two entries (their
// own arguments, pass names and backend ops), so a precision lands entry by entry, a backend lands op by
// op, and supports(ops, family, dtype) answers from what the backend has registered.
// Adding an op touches its family's files only: the header (the typed backend op, core/backend_op.h), the
// CPU code (which registers the op for the CPU backend and its op-table entries, op_table_dsl.h), the
// kernel (which registers the op for CUDA, kernels/backend_op.cuh) and the tests (the conformance shapes
// in native/tests/op_conformance.cc, and its test file).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "backend.h"
#include "dtype.h"

namespace medix {

// An entry's dtype (core/dtype.h) says which of its arguments are bf16 (the weights of a product, a KV
// cache); activations and sums stay f32, index arguments are i32.

enum class Role : uint8_t { In, Out, InOut };

// What the values of an input must be (checked on the host before the op runs).
enum class Values : uint8_t {
  Finite,       // f32, bf16: no NaN/Inf
  Any,          // f32, bf16: anything (sum_squares exists to detect non-finite values)
  NonNegative,  // f32, bf16: finite and >= 0 (a second moment)
  Ids,          // i32: in [lo, attr `bound`)
  Offsets,      // i32: packed-sequence offsets ending at attr `bound` (cu_seqlens.h)
  Free,         // i32: any value (positions, coordinates)
};

struct Attrs;

// A length rule written as code, for the shapes a product cannot state; it sets `desc` for errors.
using LengthFn = int64_t (*)(const Attrs& a, std::string* desc);

struct ArgSpec {
  const char* name;
  DType dtype;
  Role role;
  // A product of factors, each an option name, an integer or "<arg>.length" ("rows*dim",
  // "ids.length*dim"); "" accepts any length (inputs only). length_fn, when set, replaces it.
  const char* shape;
  Values values = Values::Finite;
  const char* bound = nullptr;  // Ids: upper bound (exclusive); Offsets: the token count
  int32_t lo = 0;               // Ids: lower bound
  bool optional = false;        // input: may be null; output: made only when bool option `when` is true
  const char* when = nullptr;
  LengthFn length_fn = nullptr;
};

enum class AttrKind : uint8_t { Int, Number, Bool, Choice, IntList };

struct AttrSpec {
  const char* name;
  AttrKind kind;
  bool required;
  double dflt;                       // when not required (Choice: the index)
  double lo, hi;                     // Int: the range; Number: lo/hi checked when lo < hi
  std::vector<const char*> choices;  // Choice
};

// Option values of one call: numbers (Int, Number, Bool as 0/1, Choice as its index) and lists.
struct Attrs {
  std::map<std::string, double> num;
  std::map<std::string, std::vector<int64_t>> lists;
  bool has(const std::string& k) const { return num.count(k) || lists.count(k); }
  double f(const std::string& k) const;
  int64_t i(const std::string& k) const { return static_cast<int64_t>(f(k)); }
  bool b(const std::string& k) const { return f(k) != 0; }
  const std::vector<int64_t>* list(const std::string& k) const;  // null when absent
};

// An argument: its memory, element type and where it lives (host memory while a call is checked, the
// backend's while it runs). Absent optional arguments have data null.
struct Tensor {
  void* data = nullptr;
  int64_t length = 0;
  DType dtype = DType::F32;
  const Backend* device = nullptr;  // null: host memory
};

// A call's arguments by name. The typed accessors refuse an argument of another dtype, naming it, so an
// entry cannot read bf16 bits as floats.
struct Tensors {
  std::map<std::string, Tensor> t;
  float* f(const std::string& k) const { return static_cast<float*>(typed(k, DType::F32)); }
  int32_t* i(const std::string& k) const { return static_cast<int32_t*>(typed(k, DType::I32)); }
  uint16_t* h(const std::string& k) const { return static_cast<uint16_t*>(typed(k, DType::BF16)); }  // bf16 bits
  int64_t n(const std::string& k) const { return get(k).length; }
  const Tensor& get(const std::string& k) const;

 private:
  void* typed(const std::string& k, DType want) const;
};

struct OpPass {
  const char* js_name;  // names the op in every error, as its caller knows it ("rmsnormForward")
  std::vector<ArgSpec> args;
  std::vector<AttrSpec> attrs;
  // Checks relations between options and input lengths and adds derived options (e.g. attention's T
  // from q). `lengths` holds each given input's length. Throws medix::Error (without the op prefix).
  void (*derive)(Attrs& a, const std::map<std::string, int64_t>& lengths) = nullptr;
  // Runs on `be`; pointers in `t` are the backend's memory. Returns the op's scalar result, if any.
  double (*run)(Backend& be, const Attrs& a, const Tensors& t) = nullptr;
};

struct OpDef {
  const char* family = "";   // "rmsnorm"
  DType dtype = DType::F32;  // with family, the entry's key
  // The backend ops its passes run (backend_op.h ids): a backend supports the entry when it implements
  // them all, so a backend lands entry by entry as it registers ops. op_conformance checks the list
  // against the ops each entry's passes are seen to run.
  std::vector<int> ops;
  OpPass forward;
  bool has_backward = false;
  OpPass backward;
  // Inputs of backward named after a forward output hold that output (e.g. rmsnorm's rstd); inputs
  // named "d" + a forward output hold its gradient. The conformance program relies on this naming.
};

// Every registered entry, in table order (a family's f32 entry before its others).
const std::vector<OpDef>& op_table();
// The family's entry in `dtype`; throws naming the known families, or the family's dtypes.
const OpDef& find_op(const std::string& family, DType dtype = DType::F32);
// "rmsnorm.forward" / "rmsnorm.backward" -> the pass; throws naming the op when unknown.
const OpPass& find_pass(const std::string& name, const OpDef** def = nullptr, DType dtype = DType::F32);
// Whether backend ops `ops` (a Backend's table, or registered_ops(name)) implement the entry.
bool supports(const OpTable& ops, const OpDef& d);
// The same for the family's entry in `dtype`; false when it has no such entry, throws when no family of
// that name is registered.
bool supports(const OpTable& ops, const std::string& family, DType dtype);
// The entry's backend ops the table lacks, by name ("" when none).
std::string missing_ops(const OpTable& ops, const OpDef& d);

// The length argument `s` must have under options `a` and the inputs' `lengths` (by name); -1 for
// shape "" (any). `desc` receives the rule as errors state it ("rows*dim").
int64_t arg_length(const ArgSpec& s, const Attrs& a, const std::map<std::string, int64_t>& lengths, std::string* desc);

// Validates a call (options already read into `a`): derives options, checks every given input's
// length and values (host memory in `host`) and returns the length of every argument that takes
// part, outputs included. Errors name the op, the argument or option, and what was expected.
std::map<std::string, int64_t> check_call(const OpPass& p, Attrs& a, const Tensors& host);

// Runs a checked call of entry `def` on `be`. `host` holds every argument of check_call's lengths in
// host memory (outputs zeroed); inputs go to the backend and outputs and in/out arguments come back
// (no copies on the CPU backend). Throws naming op, dtype and backend when the backend lacks the entry.
double run_call(const OpDef& def, const OpPass& p, Backend& be, const Attrs& a, const Tensors& host);

}  // namespace medix
