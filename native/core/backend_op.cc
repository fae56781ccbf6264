// The registry of backend ops (backend_op.h): op ids by name, and each backend's implementations by id.
// Registration happens during static initialisation; a mutex covers ids first asked for later (an op no
// object of this program implements).
#include "backend_op.h"

#include <cstring>
#include <map>
#include <mutex>
#include <string>

#include "error.h"

namespace medix {
namespace {

struct Registry {
  std::mutex mu;
  std::vector<const char*> names;           // by id: the ops' own names (string literals), never moved
  std::map<std::string, OpTable> backends;  // nodes never move: a Backend keeps a pointer to its table
  std::vector<bool> reference_only;         // by id
};

Registry& registry() {
  static Registry r;
  return r;
}

}  // namespace

int op_id(const char* name) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mu);
  for (const char* known : r.names)
    if (std::strcmp(known, name) == 0) fail("backend op '", name, "' is declared twice");
  r.names.push_back(name);
  return static_cast<int>(r.names.size() - 1);
}

const char* op_name(int id) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mu);
  return id >= 0 && id < static_cast<int>(r.names.size()) ? r.names[id] : "?";
}

const OpTable& registered_ops(const char* backend) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mu);
  return r.backends[backend];
}

bool register_op(const char* backend, int id, OpFn fn) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mu);
  OpTable& t = r.backends[backend];
  if (t.size() <= static_cast<size_t>(id)) t.resize(static_cast<size_t>(id) + 1, nullptr);
  if (t[id]) fail("backend op '", r.names[id], "' is registered twice for ", backend);
  t[id] = fn;
  return true;
}

bool mark_reference_only(int id) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mu);
  if (r.reference_only.size() <= static_cast<size_t>(id)) r.reference_only.resize(static_cast<size_t>(id) + 1);
  r.reference_only[id] = true;
  return true;
}

bool reference_only(int id) {
  Registry& r = registry();
  const std::lock_guard<std::mutex> lock(r.mu);
  return id >= 0 && id < static_cast<int>(r.reference_only.size()) && r.reference_only[id];
}

void missing_op(const char* backend, int id) { fail(op_name(id), ": the ", backend, " backend has no such op"); }

}  // namespace medix
