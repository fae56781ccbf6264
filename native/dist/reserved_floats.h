// Address space for a whole flat layout of floats whose memory exists only where it is written:
// full sharding gathers one unit at a time into its place in the layout (so every kernel keeps
// addressing tensors by their layout offset) and gives the pages back when the unit is done.
// Host memory (anonymous mmap); device builds would map physical chunks the same way (CUDA
// virtual memory management).
#pragma once
#include <cstdint>

namespace medix {

class ReservedFloats {
 public:
  explicit ReservedFloats(int64_t n);  // reads as zeros; costs no memory until written
  ~ReservedFloats();
  ReservedFloats(const ReservedFloats&) = delete;
  ReservedFloats& operator=(const ReservedFloats&) = delete;

  float* data() const { return data_; }
  // Floats [from, from + n) read as zero again; the whole pages inside the range go back to the system
  // (the partial pages at its ends are zeroed in place, as neighbouring units may live there).
  void discard(int64_t from, int64_t n);
  // Bytes of the reservation now backed by memory (mincore), in whole pages.
  int64_t resident_bytes() const;

 private:
  float* data_ = nullptr;
  int64_t bytes_ = 0;
};

}  // namespace medix
