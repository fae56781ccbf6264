// The op table: the entries each family registers from its own file (MEDIX_OP_TABLE_ENTRY at the end of
// native/ops/<family>.cc), made once on first use, in a fixed order (family name, then f32 before bf16)
// whatever order the linker ran the registrations in.
#include <algorithm>
#include <string>

#include "op_table_dsl.h"

namespace medix {
namespace {

std::vector<OpDef (*)()>& makers() {
  static std::vector<OpDef (*)()> m;
  return m;
}

}  // namespace

bool op_decl::register_op_def(OpDef (*make)()) {
  makers().push_back(make);
  return true;
}

const std::vector<OpDef>& op_table() {
  static const std::vector<OpDef> table = [] {
    std::vector<OpDef> t;
    for (OpDef (*make)() : makers()) t.push_back(make());
    std::sort(t.begin(), t.end(), [](const OpDef& a, const OpDef& b) {
      const int c = std::string(a.family).compare(b.family);
      return c != 0 ? c < 0 : static_cast<int>(a.dtype) < static_cast<int>(b.dtype);
    });
    for (size_t i = 1; i < t.size(); ++i)
      MEDIX_CHECK(std::string(t[i].family) != t[i - 1].family || t[i].dtype != t[i - 1].dtype,
                  "op table: ", t[i].family, " is registered twice in one dtype");
    return t;
  }();
  return table;
}

}  // namespace medix
