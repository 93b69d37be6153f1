// Numbers read from text the one way every option, flag and file field of the project reads them:
// the whole text must be the number, with nothing before or after it (no space, no '+', no
// trailing unit), in decimal (std::from_chars: no locale, no hexadecimal). So "-1" never becomes
// 2^64 - 1 in an unsigned size, and "nan", "1e3" for an integer, "12abc" or "" never pass.
#pragma once

#include <charconv>
#include <cmath>
#include <optional>
#include <string_view>
#include <system_error>

namespace ped {

// The whole text as an Int; nullopt when it is not one or does not fit Int.
template <class Int>
std::optional<Int> parse_whole_integer(std::string_view text) {
  Int value{};
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The whole text as an Int in [lo, hi]; nullopt otherwise.
template <class Int>
std::optional<Int> parse_integer_in(std::string_view text, Int lo, Int hi) {
  const std::optional<Int> value = parse_whole_integer<Int>(text);
  if (!value || *value < lo || *value > hi) return std::nullopt;
  return value;
}

// The whole text as a finite double; nullopt for anything else, "nan" and "inf" included.
inline std::optional<double> parse_whole_finite(std::string_view text) {
  double value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || !std::isfinite(value)) return std::nullopt;
  return value;
}

// The whole text as a finite double >= lo (> lo when open_low) and <= hi (< hi when open_high).
inline std::optional<double> parse_real_in(std::string_view text, double lo, bool open_low, double hi,
                                           bool open_high) {
  const std::optional<double> value = parse_whole_finite(text);
  if (!value || !(open_low ? *value > lo : *value >= lo) || !(open_high ? *value < hi : *value <= hi)) {
    return std::nullopt;
  }
  return value;
}

}  // namespace ped
