// The op interface. Model, optimizer and loss code run ops only through a Backend, so a CUDA backend
// (kernels/) slots in by registering its implementations; callers never change. Pointers passed to a
// backend's ops point into memory that backend allocated (host memory for the CPU backend, device memory
// for CUDA). Each op is declared once, beside its reference implementation in native/ops/<family>.h,
// as a typed struct (backend_op.h), and documented there; a backend implements it by registering a
// function in its own code (the CPU in native/ops/<family>.cc, CUDA in kernels/<family>.cu), and a
// caller runs it with be.run<RmsnormForward>(out, rstd, x, ...). This class holds only what every
// backend must have itself: memory, synchronisation, and the table of its ops.
#pragma once
#include <cstddef>
#include <cstdint>

#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "reservation.h"

namespace medix {

// An op's implementation, type-erased: registered under its op's id (backend_op.h), cast back to the
// op's typed Impl by Backend::run.
using OpFn = void (*)();
using OpTable = std::vector<OpFn>;
// Whether table `ops` holds an implementation of op `id` (a table is as long as its highest registered id).
inline bool has_op(const OpTable& ops, int id) { return id >= 0 && id < static_cast<int>(ops.size()) && ops[id]; }

// A pointer argument of one op call, as the device-memory guard checks it: backend memory unless the
// op's declaration says host.
struct MemoryArg {
  const char* name;
  const void* p;
  bool host;
};
using MemoryArgs = std::vector<MemoryArg>;

// Watches every op of a backend (the device-memory guard of native/tests/guard_backend.h): enter() sees
// the op's pointer arguments before it runs, leave() follows it (also when it throws).
class OpWatch {
 public:
  virtual ~OpWatch() = default;
  virtual void enter(const char* op, const MemoryArgs& args) = 0;
  virtual void leave() = 0;
};

// "<op>: the <backend> backend has no such op": a backend lands op by op, and a missing one says so.
[[noreturn]] void missing_op(const char* backend, int op_id);

class Backend {
 public:
  // `ops`: the implementations by op id (backend_op.h's registered_ops(name), or a table of its own).
  explicit Backend(const OpTable& ops) : ops_(&ops) {}
  virtual ~Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  virtual const char* name() const = 0;

  // Runs op `Op` (a struct of native/ops/<family>.h) with its arguments.
  template <class Op, class... Args>
  typename Op::Result run(Args&&... args) {
    const auto fn = reinterpret_cast<typename Op::Impl>(impl(Op::id()));
    if (!watch_) return fn(*this, std::forward<Args>(args)...);
    watch_->enter(Op::name, Op::memory(args...));
    const Leave leave{watch_};
    return fn(*this, std::forward<Args>(args)...);
  }
  bool has(int op_id) const { return has_op(*ops_, op_id); }
  const OpTable& ops() const { return *ops_; }

  // Waits until every op queued so far has finished, so that an asynchronous backend's errors surface
  // in the call that caused them (a BackendThread calls it after each piece of work it runs). A
  // backend whose ops complete before they return (the CPU) has nothing to wait for.
  virtual void synchronize() {}
  // Makes the backend's device current on the calling thread (CUDA: a context is per thread). A
  // BackendThread (backend_thread.h) calls it when it starts, and a device backend's ops call it first,
  // for callers on other threads. The CPU has nothing to do.
  virtual void bind_thread() {}

  // Memory
  virtual void* alloc(size_t bytes) = 0;  // zero-filled
  // Contents unspecified: for a buffer whose every element an op writes before anything reads it (a
  // forward's activations). A backend may skip alloc's fill, which on a GPU is a pass over the memory per
  // allocation; the device-memory guard (native/tests/guard_backend.h) fills it with NaN instead, so a
  // caller that reads before writing gets a result that differs from the CPU's.
  virtual void* alloc_uninit(size_t bytes) { return alloc(bytes); }
  virtual void release(void* p) = 0;
  virtual void to_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void from_host(void* dst, const void* src, size_t bytes) = 0;
  virtual void zero_bytes(void* p, size_t bytes) = 0;
  virtual void copy_bytes(void* dst, const void* src, size_t bytes) = 0;  // both backend memory
  // n elements of T (f32, bf16 bits, i32, ...).
  template <class T>
  void zero(T* p, int64_t n) {
    static_assert(!std::is_void_v<T>, "zero of n elements needs their type; zero_bytes takes bytes");
    zero_bytes(p, sizeof(T) * static_cast<size_t>(n));
  }
  template <class T>
  void copy(T* dst, const T* src, int64_t n) {
    static_assert(!std::is_void_v<T>, "copy of n elements needs their type; copy_bytes takes bytes");
    copy_bytes(dst, src, sizeof(T) * static_cast<size_t>(n));
  }
  // Address space of `bytes` whose memory is backed only where acquired (reservation.h): the layouts
  // full sharding gathers units into. Ops may be given pointers into acquired ranges only.
  virtual std::unique_ptr<Reservation> reserve(int64_t bytes) = 0;

 protected:
  void watch(OpWatch* w) { watch_ = w; }

 private:
  struct Leave {
    OpWatch* w;
    ~Leave() { w->leave(); }
  };
  OpFn impl(int op_id) const {
    if (!has(op_id)) missing_op(name(), op_id);
    return (*ops_)[op_id];
  }
  const OpTable* ops_;
  OpWatch* watch_ = nullptr;
};

// Backend memory of n elements, owned by a value that moves: per-call buffers, and activations kept in
// containers and released one by one (the vision tower's per-block buffers under recompute). n = 0 still
// allocates (the backends hand out a valid pointer), so an empty argument is never a null pointer.
template <typename T>
class BackendArray {
 public:
  BackendArray() = default;
  // Zero-filled.
  BackendArray(Backend& be, int64_t n) : BackendArray(be, n, be.alloc(bytes(n))) {}
  // Contents unspecified (Backend::alloc_uninit): the caller writes every element before reading any.
  static BackendArray uninit(Backend& be, int64_t n) { return BackendArray(be, n, be.alloc_uninit(bytes(n))); }
  ~BackendArray() { reset(); }
  BackendArray(BackendArray&& o) noexcept : be_(o.be_), n_(o.n_), p_(o.p_) { o.forget(); }
  BackendArray& operator=(BackendArray&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = o.be_, n_ = o.n_, p_ = o.p_;
      o.forget();
    }
    return *this;
  }
  BackendArray(const BackendArray&) = delete;
  BackendArray& operator=(const BackendArray&) = delete;
  void reset() {
    if (p_) be_->release(p_);
    forget();
  }
  T* get() const { return p_; }
  int64_t size() const { return n_; }

 private:
  BackendArray(Backend& be, int64_t n, void* p) : be_(&be), n_(n), p_(static_cast<T*>(p)) {}
  static size_t bytes(int64_t n) { return sizeof(T) * static_cast<size_t>(n); }
  void forget() { p_ = nullptr, n_ = 0; }
  Backend* be_ = nullptr;
  int64_t n_ = 0;
  T* p_ = nullptr;
};

// Backend memory kept between calls and grown on demand (per-step buffers of generation, whose
// size changes from step to step but should not cost an allocation each time).
class GrowableBuffer {
 public:
  explicit GrowableBuffer(Backend& be) : be_(be) {}
  ~GrowableBuffer() {
    if (p_) be_.release(p_);
  }
  GrowableBuffer(const GrowableBuffer&) = delete;
  GrowableBuffer& operator=(const GrowableBuffer&) = delete;
  // At least `bytes` bytes; the contents are not kept when it grows.
  template <typename T>
  T* get(size_t bytes) {
    if (bytes > capacity_ || !p_) {
      if (p_) be_.release(p_);
      p_ = nullptr;  // stays empty if the allocation below throws
      capacity_ = 0;
      p_ = be_.alloc(bytes);
      capacity_ = bytes;
    }
    return static_cast<T*>(p_);
  }

 private:
  Backend& be_;
  void* p_ = nullptr;
  size_t capacity_ = 0;
};

// The reference backend: host memory, the medix::cpu functions.
Backend& cpu_backend();

}  // namespace medix
