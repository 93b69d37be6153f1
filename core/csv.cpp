#include "core/csv.hpp"

#include <charconv>
#include <cmath>
#include <string_view>
#include <system_error>

#include "core/errors.hpp"

namespace ped {

std::string csv_cell(const std::string& text) {
  if (text.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) {
    throw_invalid("csv_cell", "text '", printable(text),
                  "' holds a line break or a NUL byte, which a CSV line cannot hold");
  }
  // Also quoted: a leading '#' (the reader skips such lines as comments) and edge blanks (it trims them).
  const auto blank = [](char c) { return c == ' ' || c == '\t'; };
  const bool plain = text.find_first_of(",\"") == std::string::npos &&
                     (text.empty() || (text.front() != '#' && !blank(text.front()) && !blank(text.back())));
  if (plain) return text;
  std::string quoted = "\"";
  for (char c : text) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

std::string format_number(double value) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  const auto [end, error] = std::to_chars(buffer, buffer + sizeof(buffer), value);
  if (error != std::errc()) throw_invalid("format_number", "cannot format ", value);
  return std::string(buffer, end);
}

}  // namespace ped
