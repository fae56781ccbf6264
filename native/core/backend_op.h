// Typed backend ops. An op is declared once, in its native/ops/<family>.h beside its CPU reference, as a
// struct naming its signature (the reference function's), its name, its profiling kind and its
// arguments:
//
//   struct RmsnormForward : BackendOp<RmsnormForward, decltype(cpu::rmsnorm_forward)> {
//     static constexpr const char* name = "rmsnorm_forward";
//     static constexpr OpKind kind = OpKind::Norm;
//     static constexpr OpArg args[] = {{"out"}, {"rstd"}, {"x"}, {"w"}, {"rows"}, {"dim"}, {"eps"}};
//   };
//
// A backend implements it by registering a function in its own code, with no list to extend:
//   MEDIX_CPU_OP(RmsnormForward, cpu::rmsnorm_forward);               (native/ops/rmsnorm.cc)
//   MEDIX_CUDA_OP(RmsnormForward, cuda::rmsnorm_forward);             (kernels/rmsnorm.cu, backend_op.cuh)
// or, where it needs more than a call, MEDIX_BACKEND_OP with a function of the op's Impl type.
// and callers run it as be.run<RmsnormForward>(out, rstd, x, w, rows, dim, eps). A backend without it
// refuses it by name (missing_op). Pointer arguments are backend memory unless `args` marks them host
// (host_arg); pointers inside argument structs are named by a visit_memory overload next to the struct
// (or the struct is declared PointerFree there).
// An op may add `static double flops(<its arguments>)`: the multiply-adds of its matrix products, which
// op profiling (op_profile.h) reports.
//
// Registration runs during static initialisation, from the objects that define the functions; the
// addon and the test programs link every object (kernels with --whole-archive), so none is dropped.
#pragma once
#include <cstddef>
#include <iterator>
#include <type_traits>

#include "backend.h"
#include "op_profile.h"

namespace medix {

// One argument of an op, as errors and the device-memory guard name it.
struct OpArg {
  const char* name;
  bool host = false;  // a pointer the Backend contract says is host memory (load statistics, offsets)
};
constexpr OpArg host_arg(const char* name) { return {name, true}; }

// The op's id, assigned on first use (ids are dense, so a backend's table is a vector).
int op_id(const char* name);
const char* op_name(int id);
// The implementations registered under `backend` ("cpu", "cuda"), by op id; empty slots for the rest.
const OpTable& registered_ops(const char* backend);
bool register_op(const char* backend, int id, OpFn fn);
// Ops the CPU alone has by design (a reference another op is measured against): no device backend is
// expected to implement them, and the device-memory guard, which stands for CUDA, refuses them too.
bool mark_reference_only(int id);
bool reference_only(int id);

// A struct argument that holds no pointer says so beside its definition (MoeShape, LogprobShape, ...).
template <class T>
struct PointerFree : std::false_type {};

// The pointers inside a struct argument: its header overloads this (attention's cu_seqlens, the sampler's
// history), or declares it PointerFree. One or the other is required, so a struct's pointers cannot go
// unchecked by the device-memory guard.
template <class T>
void visit_memory(MemoryArgs&, const T&) {
  static_assert(PointerFree<T>::value,
                "a struct argument of a backend op needs a visit_memory overload naming "
                "its pointers, or a PointerFree specialisation");
}

template <class T>
void add_memory_arg(MemoryArgs& m, const OpArg& a, const T& v) {
  if constexpr (std::is_pointer_v<T>)
    m.push_back({a.name, static_cast<const void*>(v), a.host});
  else if constexpr (std::is_class_v<T>)
    visit_memory(m, v);
}

template <class Op, class = void>
struct HasFlops : std::false_type {};
template <class Op>
struct HasFlops<Op, std::void_t<decltype(&Op::flops)>> : std::true_type {};

template <class Op, class Sig>
struct BackendOp;

template <class Op, class R, class... A>
struct BackendOp<Op, R(A...)> {
  using Result = R;
  using Impl = R (*)(Backend&, A...);

  static int id() {
    static const int i = op_id(Op::name);
    return i;
  }
  // The call's pointer arguments, for an OpWatch.
  static MemoryArgs memory(const A&... a) {
    static_assert(std::size(Op::args) == sizeof...(A), "an op's args name each argument of its signature");
    MemoryArgs m;
    size_t i = 0;
    (add_memory_arg(m, Op::args[i++], a), ...);
    return m;
  }
  // What backend `backend` registered for this op; null when nothing.
  static Impl registered(const char* backend) {
    const OpTable& t = registered_ops(backend);
    return has_op(t, id()) ? reinterpret_cast<Impl>(t[id()]) : nullptr;
  }
};

// The multiply-adds (as FLOPs) of a call, for op profiling: Op::flops where the op declares it, else 0.
template <class Op, class... A>
double op_flops(const A&... a) {
  if constexpr (HasFlops<Op>::value)
    return Op::flops(a...);
  else
    return 0;
}

template <class Op>
bool register_impl(const char* backend, typename Op::Impl fn) {
  return register_op(backend, Op::id(), reinterpret_cast<OpFn>(fn));
}

#define MEDIX_OP_CONCAT2(a, b) a##b
#define MEDIX_OP_CONCAT(a, b) MEDIX_OP_CONCAT2(a, b)
// Registers `impl` (an Op::Impl: R(Backend&, args...)) as backend `backend`'s op `Op`.
#define MEDIX_BACKEND_OP(backend, Op, impl)                                            \
  [[maybe_unused]] static const bool MEDIX_OP_CONCAT(medix_backend_op_, __COUNTER__) = \
      ::medix::register_impl<Op>(backend, impl)
// A CPU op that only the CPU is to have (reference_only).
#define MEDIX_CPU_REFERENCE_OP(Op, fn)                                                   \
  MEDIX_CPU_OP(Op, fn);                                                                  \
  [[maybe_unused]] static const bool MEDIX_OP_CONCAT(medix_reference_op_, __COUNTER__) = \
      ::medix::mark_reference_only(Op::id())
// The CPU backend's op: reference function `fn` (overloads and default arguments resolved for the op's
// argument types), timed into the op's kind.
#define MEDIX_CPU_OP(Op, fn)                                                              \
  MEDIX_BACKEND_OP("cpu", Op, static_cast<Op::Impl>([](::medix::Backend&, auto... a) {    \
                     const ::medix::OpTimer timer(Op::kind, ::medix::op_flops<Op>(a...)); \
                     return fn(a...);                                                     \
                   }))

}  // namespace medix
