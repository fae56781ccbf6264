// Errors raised by native code. Every check that can fail on user input throws medix::Error with a
// message naming the op and the argument; the bindings turn it into a JS exception.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>

namespace medix {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(const Args&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  throw Error(os.str());
}

#define MEDIX_CHECK(cond, ...)               \
  do {                                       \
    if (!(cond)) ::medix::fail(__VA_ARGS__); \
  } while (0)

}  // namespace medix
