// The one check of packed-sequence offsets, for every op and binding that takes them: n_seqs + 1
// offsets, the first 0, non-decreasing, the last the token count T. Header-only so that the CUDA
// programs' CPU references (scripts/build-cuda-check.sh) get it without another source file.
#pragma once
#include <cstdint>

#include "error.h"

namespace medix {

// `fn` names the caller and `name` the argument in the error (e.g. "attentionForward: cuSeqlens ...").
// `offsets` is the number of entries the caller holds (n_seqs + 1).
inline void check_cu_seqlens(const int32_t* cu, int64_t offsets, int64_t T, const char* fn, const char* name) {
  MEDIX_CHECK(cu != nullptr && offsets >= 2, fn, ": ", name, " must hold at least 2 offsets (n_seqs + 1), got ",
              cu ? offsets : 0);
  MEDIX_CHECK(cu[0] == 0, fn, ": ", name, "[0] must be 0, got ", cu[0]);
  for (int64_t i = 1; i < offsets; ++i)
    MEDIX_CHECK(cu[i] >= cu[i - 1], fn, ": ", name, " must be non-decreasing, but ", name, "[", i, "] = ", cu[i], " < ",
                cu[i - 1]);
  MEDIX_CHECK(cu[offsets - 1] == T, fn, ": ", name, " must end at the token count ", T, ", got ", cu[offsets - 1]);
}

}  // namespace medix
