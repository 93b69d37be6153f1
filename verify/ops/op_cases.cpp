#include "verify/ops/op_cases.hpp"

#include <sstream>
#include <stdexcept>

namespace ped::verify {

std::string shape_string(std::initializer_list<std::pair<const char*, std::int64_t>> sizes) {
  std::ostringstream os;
  bool first = true;
  for (const auto& [name, value] : sizes) {
    os << (first ? "" : " ") << name << "=" << value;
    first = false;
  }
  return os.str();
}

void require_sizes(bool ok, const std::string& op, const std::string& shape, const std::string& expected) {
  if (!ok) throw std::invalid_argument(op + ": sizes " + shape + " do not fit, expected " + expected);
}

}  // namespace ped::verify
