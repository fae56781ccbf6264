// Address space whose memory is backed only where it is acquired: full sharding gathers one unit of a
// flat layout at a time into its place (so every kernel keeps addressing a tensor at base + offset) and
// gives the memory back when the unit is done. A backend makes one with Backend::reserve; the host's
// pages come from an anonymous mapping, a GPU's granules from its virtual memory management
// (kernels/reservation.cu), the device-memory guard's from its arena (native/tests/guard_backend.h).
//
// Memory is backed in granules (a page on the host, 2 MiB on a GPU) that neighbouring ranges may share:
// each granule counts the acquisitions that cover it and is given back when the last one is released.
// Contents are unspecified where a granule is newly backed, and survive a release while another
// acquisition keeps the granule; a caller writes what it reads (full sharding zeroes a unit's gradients
// when it acquires them).
#pragma once
#include <cstdint>
#include <vector>

namespace medix {

class Reservation {
 public:
  virtual ~Reservation() = default;
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;

  char* data() const { return base_; }
  int64_t bytes() const { return bytes_; }
  int64_t granule_bytes() const { return granule_; }
  // Bytes [from, from + n) usable by the backend's ops until the matching release.
  void acquire(int64_t from, int64_t n);
  // Ends the acquisition of the same range: granules no other acquisition covers go back.
  void release(int64_t from, int64_t n);
  // Bytes backed now: whole granules.
  int64_t resident_bytes() const { return backed_ * granule_; }
  // Whether the granule holding byte `at` is backed (the guard's checks).
  bool backed(int64_t at) const { return at >= 0 && at < bytes_ && users_[at / granule_] > 0; }

 protected:
  // base: bytes of address space the subclass reserved, granule: its backing unit (a power of two).
  Reservation(char* base, int64_t bytes, int64_t granule);
  // Backs granules [first, first + count) / gives them back; both see whole runs of granules. A back()
  // that throws leaves none of its run backed.
  virtual void back(int64_t first, int64_t count) = 0;
  virtual void unback(int64_t first, int64_t count) = 0;

 private:
  struct Run {
    int64_t first, count;
  };
  // The runs of granules that bytes [from, from + n) touch (`unused`: only those no acquisition covers).
  std::vector<Run> granules(int64_t from, int64_t n, bool unused) const;
  char* base_;
  int64_t bytes_, granule_;
  std::vector<int32_t> users_;  // per granule: the acquisitions that cover it
  int64_t backed_ = 0;
};

}  // namespace medix
