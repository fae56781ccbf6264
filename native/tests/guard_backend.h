// A "device memory" emulator for programs that run on any CPU machine (no GPU): backend memory comes from one mmap'd
// arena that is PROT_NONE except while a backend op runs, so any host dereference of backend memory outside an op
// faults (SIGSEGV with the stack in gdb). Every op also checks the Backend contract: pointers that must be backend
// memory are inside a live allocation (or null), pointers the contract says are host memory are outside the arena.
// name() is "cuda" so callers refuse what they refuse on CUDA; the attention head_dim limits of kernels/attention.cu
// are enforced too. Ops run the CPU reference, so every output equals the CPU backend's bit for bit.
// Reservations (Backend::reserve) live in the arena too, page-sized granules: one not acquired stays
// PROT_NONE while ops run, and a pointer or memory call into it is a contract violation.
// Used by device_memory_guard.cc (the model's training and generation) and op_conformance.cc (every op's generic
// device path).
#pragma once
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../core/backend.h"
#include "../core/backend_op.h"
#include "../core/reservation.h"
#include "../ops/attention.h"
#include "../core/error.h"

namespace medix::testing {

class GuardBackend final : public Backend, private OpWatch {
 public:
  GuardBackend() : Backend(guard_ops()) {
    watch(this);
    // Address space only (MAP_NORESERVE): allocations are never handed out twice, and release returns
    // their pages to the system, so what is resident is what is live.
    // Smaller arenas where the address space is limited (ulimit -v).
    for (size_t gib : {256, 64, 16}) {
      cap_ = gib << 30;
      void* p = mmap(nullptr, cap_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (p != MAP_FAILED) {
        base_ = static_cast<char*>(p);
        return;
      }
    }
    die("mmap of the arena (16 GiB at least)");
  }
  const char* name() const override { return "cuda"; }

  bool in(const void* p) const {
    auto c = static_cast<const char*>(p);
    return c >= base_ && c < base_ + used_;
  }
  // The end of the live allocation p points into (not one released: the CUDA pool hands released memory out
  // again); null when none.
  const char* live_end(const void* p) const {
    auto c = static_cast<char*>(const_cast<void*>(p));
    auto it = live_.upper_bound(c);
    if (it == live_.begin()) return nullptr;
    --it;
    const char* end = it->first + std::max<size_t>(it->second, 1);
    return c < end ? end : nullptr;
  }
  bool live_at(const void* p) const { return live_end(p) != nullptr; }
  // A violation of the contract: printed and counted, and with `strict` (the addon's "cuda-guard" backend,
  // where no program reads the count) thrown, naming it. Not for release(), which destructors call.
  void violated(const char* kind, const char* op, const char* what) const {
    fprintf(stderr, "%s: %s: %s\n", kind, op, what);
    ++violations;
    if (strict) fail("backend contract (", kind, "): ", op, ": ", what);
  }
  void dev(const void* p, const char* op, const char* arg) const {
    if (p && !in(p))
      violated("CONTRACT", op, (std::string(arg) + " is not backend memory").c_str());
    else if (p && !live_at(p))
      violated("CONTRACT", op, (std::string(arg) + " points into released backend memory").c_str());
    else if (p && !acquired(p, 1))
      violated("CONTRACT", op, (std::string(arg) + " points into reserved memory not acquired").c_str());
  }
  // A memory call's range: `bytes` from p, all inside one live allocation.
  void dev_range(const void* p, size_t bytes, const char* op, const char* arg) const {
    dev(p, op, arg);
    const char* end = p ? live_end(p) : nullptr;
    if (end && static_cast<const char*>(p) + bytes > end)
      violated("CONTRACT", op,
               (std::string(arg) + ": " + std::to_string(bytes) + " bytes run past its allocation").c_str());
    else if (p && live_at(p) && acquired(p, 1) && !acquired(p, bytes))
      violated(
          "CONTRACT", op,
          (std::string(arg) + ": " + std::to_string(bytes) + " bytes run into reserved memory not acquired").c_str());
  }
  void host(const void* p, const char* op, const char* arg) const {
    if (p && in(p)) violated("CONTRACT", op, (std::string(arg) + " must be host memory but is backend memory").c_str());
  }
  void thread_check(const char* op) {
    if (owner_ == std::thread::id()) owner_ = std::this_thread::get_id();
    if (owner_ != std::this_thread::get_id()) violated("THREAD", op, "called from another thread");
  }
  // The arena readable and writable while an op runs.
  void open(const char* op) {
    thread_check(op);
    ++op_count;
    // Fails where memory is not overcommitted (vm.overcommit_memory=2): a writable arena is charged.
    if (mprotect(base_, cap_, PROT_READ | PROT_WRITE) != 0) die("mprotect of the arena to read-write");
    for (const Reserved* r : reservations_) r->close_unacquired();
  }
  void close() {
    if (mprotect(base_, cap_, PROT_NONE) != 0) die("mprotect of the arena to no access");
  }
  struct Open {
    GuardBackend& g;
    explicit Open(GuardBackend& b, const char* op) : g(b) { g.open(op); }
    ~Open() { g.close(); }
  };

  void* alloc(size_t bytes) override { return allocate(bytes, 0, "alloc"); }
  // All bits set: NaN as f32 and as bf16, -1 as int32. An op that reads such memory before writing it
  // makes a result that differs from the CPU's, where the same buffer holds zeros or whatever malloc had.
  void* alloc_uninit(size_t bytes) override { return allocate(bytes, 0xff, "alloc_uninit"); }
  void release(void* p) override {
    if (!p) return;
    auto it = live_.find(static_cast<char*>(p));
    if (it == live_.end()) {
      fprintf(stderr, "CONTRACT: release of %p, not a live allocation of this backend\n", p);
      ++violations;
      return;
    }
    madvise(it->first, span(it->second), MADV_DONTNEED);
    live_.erase(it);
  }
  void to_host(void* dst, const void* src, size_t bytes) override {
    host(dst, "to_host", "dst");
    dev_range(src, bytes, "to_host", "src");
    Open o(*this, "to_host");
    std::memcpy(dst, src, bytes);
  }
  void from_host(void* dst, const void* src, size_t bytes) override {
    dev_range(dst, bytes, "from_host", "dst");
    host(src, "from_host", "src");
    Open o(*this, "from_host");
    if (bytes) std::memcpy(dst, src, bytes);
  }
  void zero_bytes(void* p, size_t bytes) override {
    dev_range(p, bytes, "zero", "p");
    Open o(*this, "zero");
    if (bytes) std::memset(p, 0, bytes);
  }
  std::unique_ptr<Reservation> reserve(int64_t bytes) override {
    static const int64_t page = static_cast<int64_t>(sysconf(_SC_PAGESIZE));
    const int64_t rounded = (std::max<int64_t>(bytes, 1) + page - 1) / page * page;
    return std::make_unique<Reserved>(*this, static_cast<char*>(allocate(rounded, 0xff, "reserve")), rounded, page);
  }
  void copy_bytes(void* d, const void* s, size_t bytes) override {
    dev_range(d, bytes, "copy", "dst");
    dev_range(s, bytes, "copy", "src");
    Open o(*this, "copy");
    if (bytes) std::memcpy(d, s, bytes);
  }
  // Every op (Backend::run): the contract on its pointer arguments, then its memory opened while it runs.
  void enter(const char* op, const MemoryArgs& args) override {
    for (const MemoryArg& a : args) a.host ? host(a.p, op, a.name) : dev(a.p, op, a.name);
    seen.insert(op);
    open(op);
  }
  void leave() override { close(); }

  // The GPU attention's head_dim limits, and the host copy of cu_seqlens (when given) must hold the
  // backend array's values (called while the op runs, where both are readable).
  void attention_check(const AttentionShape& s, const char* fn) {
    MEDIX_CHECK(s.head_dim >= 1 && s.head_dim <= 256, fn, ": head_dim must be in [1, 256] on the GPU, got ",
                s.head_dim);
    if (s.cu_seqlens_host && std::memcmp(s.cu_seqlens_host, s.cu_seqlens, sizeof(int32_t) * (s.n_seqs + 1)) != 0)
      violated("CONTRACT", fn, "cu_seqlens_host differs from cu_seqlens");
  }

  // Its ops: the CPU's but the reference-only ones (CUDA is not to have them), attention checked against
  // the GPU kernels' limits first. Also what opSupports('cuda-guard') answers from, without making one.
  static const OpTable& guard_ops() {
    static const OpTable table = [] {
      OpTable t = registered_ops("cpu");
      for (size_t id = 0; id < t.size(); ++id)
        if (reference_only(static_cast<int>(id))) t[id] = nullptr;  // CUDA is not to have them either
      t[AttentionForward::id()] = reinterpret_cast<OpFn>(static_cast<AttentionForward::Impl>(&attention_forward));
      t[AttentionBackward::id()] = reinterpret_cast<OpFn>(static_cast<AttentionBackward::Impl>(&attention_backward));
      return t;
    }();
    return table;
  }

  mutable int violations = 0;
  bool strict = false;
  int64_t op_count = 0;        // ops and memory calls run on it
  std::set<std::string> seen;  // the names of the ops run on it
  size_t live() const { return live_.size(); }

 private:
  // A reservation in the arena: a granule newly backed is filled with NaN (backing promises no contents), one
  // given back returns its page to the system; the granules not acquired are closed while ops run.
  class Reserved final : public Reservation {
   public:
    Reserved(GuardBackend& g, char* base, int64_t bytes, int64_t page) : Reservation(base, bytes, page), g_(g) {
      g_.reservations_.push_back(this);
    }
    ~Reserved() override {
      g_.reservations_.erase(std::find(g_.reservations_.begin(), g_.reservations_.end(), this));
      g_.release(data());
    }
    void close_unacquired() const {
      const int64_t gb = granule_bytes();
      for (int64_t at = 0; at < bytes(); at += gb)
        if (!backed(at) && mprotect(data() + at, static_cast<size_t>(gb), PROT_NONE) != 0)
          die("mprotect of a granule not acquired");
    }

   private:
    void back(int64_t first, int64_t count) override {
      Open o(g_, "reservation back");
      char* p = data() + first * granule_bytes();
      const size_t bytes = static_cast<size_t>(count * granule_bytes());
      // Counted as acquired only once back() returns, so still closed by open().
      if (mprotect(p, bytes, PROT_READ | PROT_WRITE) != 0) die("mprotect of granules being backed");
      std::memset(p, 0xff, bytes);
    }
    void unback(int64_t first, int64_t count) override {
      madvise(data() + first * granule_bytes(), static_cast<size_t>(count * granule_bytes()), MADV_DONTNEED);
    }
    GuardBackend& g_;
  };
  // Whether [p, p + bytes) lies in acquired granules where it lies in a reservation.
  bool acquired(const void* p, size_t bytes) const {
    auto c = static_cast<const char*>(p);
    for (const Reserved* r : reservations_)
      if (c >= r->data() && c < r->data() + r->bytes()) {
        const int64_t from = c - r->data(), to = std::min<int64_t>(from + std::max<size_t>(bytes, 1), r->bytes());
        for (int64_t at = from / r->granule_bytes() * r->granule_bytes(); at < to; at += r->granule_bytes())
          if (!r->backed(at)) return false;
      }
    return true;
  }
  std::vector<Reserved*> reservations_;
  static void attention_forward(Backend& be, float* out, float* lse, const float* q, const float* k, const float* v,
                                const AttentionShape& s) {
    static_cast<GuardBackend&>(be).attention_check(s, "cuda attention_forward");
    static const AttentionForward::Impl cpu_op = AttentionForward::registered("cpu");
    cpu_op(be, out, lse, q, k, v, s);
  }
  static void attention_backward(Backend& be, float* dq, float* dk, float* dv, const float* dout, const float* out,
                                 const float* lse, const float* q, const float* k, const float* v,
                                 const AttentionShape& s) {
    static_cast<GuardBackend&>(be).attention_check(s, "cuda attention_backward");
    static const AttentionBackward::Impl cpu_op = AttentionBackward::registered("cpu");
    cpu_op(be, dq, dk, dv, dout, out, lse, q, k, v, s);
  }
  [[noreturn]] static void die(const char* what) {
    fprintf(stderr, "guard backend: %s failed: %s\n", what, strerror(errno));
    abort();
  }
  void* allocate(size_t bytes, int fill, const char* what) {
    Open o(*this, what);
    const size_t n = span(bytes);
    if (used_ + n > cap_) fail("guard backend: arena full");
    char* p = base_ + used_;
    used_ += n;
    std::memset(p, fill, bytes);
    live_[p] = bytes;
    return p;
  }
  // The arena bytes an allocation takes: whole pages (release hands them back), and a guard page after it.
  static size_t span(size_t bytes) {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    return (bytes + page - 1) / page * page + page;
  }
  char* base_ = nullptr;
  size_t cap_ = 0, used_ = 0;
  std::map<char*, size_t> live_;  // live allocations and their sizes
  std::thread::id owner_;
};

}  // namespace medix::testing
