// Error conventions shared by every folder: every message names the function or the file and line,
// and the offending value, so a CI log alone says what to fix.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace ped {

// Bad input: a file that is missing, empty, malformed or inconsistent with another. The commands
// exit 2 on it (as on any error that prevents a verdict).
class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// `text` with every control character (bytes below 0x20, 0x7f) written \xNN, so that a message
// quoting it stays one readable line.
inline std::string printable(std::string_view text) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) {
      out += "\\x";
      out += hex[byte >> 4];
      out += hex[byte & 15];
    } else {
      out += c;
    }
  }
  return out;
}

// The first control character of `text` as "0xNN", or "" when it has none.
inline std::string first_control_character(std::string_view text) {
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) return printable(std::string_view(&c, 1)).replace(0, 2, "0x");
  }
  return "";
}

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

}  // namespace ped
