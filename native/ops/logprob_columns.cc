// The fused log-prob forward's column statistics at the build's own vector width (8 lanes).
#include "logprob_columns_impl.h"

namespace medix::cpu {

const LogprobColumns& base_logprob_columns() {
  typedef float v8f __attribute__((vector_size(32)));
  typedef int32_t v8i __attribute__((vector_size(32)));
  static const LogprobColumns c = make_logprob_columns<v8f, v8i>("avx2");
  return c;
}

}  // namespace medix::cpu
