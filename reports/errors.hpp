// Error conventions of reports/: every message names the function or the file and line, and the
// offending value, so a CI log alone says what to fix.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ped::reports {

// Bad input: a file that is missing, empty, malformed or inconsistent with another. The `report`
// command exits 2 on it (as on any error that prevents a verdict).
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <class... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

template <class... Parts>
[[noreturn]] void throw_input_error(const Parts&... parts) {
  throw InputError(concat(parts...));
}

// Throws std::invalid_argument("function: ..."): a caller passed a value the function cannot use.
template <class... Parts>
[[noreturn]] void throw_invalid(const char* function, const Parts&... parts) {
  throw std::invalid_argument(concat(function, ": ", parts...));
}

}  // namespace ped::reports
