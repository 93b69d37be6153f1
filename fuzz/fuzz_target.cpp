#include "fuzz/fuzz_target.hpp"

#include <cstdio>
#include <cstdlib>

namespace ped::fuzz {

std::string& current_input() {
  static std::string name;
  return name;
}

void fail(std::string_view target, const std::string& what) {
  std::fprintf(stderr, "fuzz target %.*s: FAILED%s%s: %s\n", static_cast<int>(target.size()), target.data(),
               current_input().empty() ? "" : " on ", current_input().c_str(), what.c_str());
  std::fflush(stderr);
  std::abort();
}

bool has_control_character(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return true;
  }
  return false;
}

void check_error_message(std::string_view target, std::string_view message, std::string_view source) {
  if (!message.starts_with(source)) {
    fail(target, "error message does not start with the input's name '" + std::string(source) + "': " +
                     std::string(message));
  }
  if (has_control_character(message)) {
    fail(target, "error message is not one printable line: " + std::string(message));
  }
}

}  // namespace ped::fuzz
