// Checks of command-line option values, shared by every executable of the project (CLI11).
//
// A value is checked as text before CLI11 converts it, so that "-1" never becomes 2^64 - 1 in an
// unsigned size and "nan", "1e3" for an integer, "12abc" or "" never pass: the whole text must be a
// number in range. CLI11's own CLI::Range lets NaN through (every comparison with NaN is false).
// Each validator's description is the expected range, which --help shows and errors quote.
#pragma once

#include <CLI/CLI.hpp>

#include <cmath>
#include <limits>
#include <sstream>
#include <string>

#include "core/numbers.hpp"

namespace ped::cli {

// A whole number in [lo, hi], written in decimal with nothing before or after it.
template <class Int>
CLI::Validator integer_in(Int lo, Int hi) {
  const std::string expected = "an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        return parse_integer_in<Int>(text, lo, hi) ? "" : "expected " + expected + ", got '" + text + "'";
      },
      expected);
}

// A finite real number >= lo (> lo when `open_low`), and <= hi (< hi when `open_high`).
inline CLI::Validator real_in(double lo, bool open_low, double hi = std::numeric_limits<double>::infinity(),
                              bool open_high = false) {
  std::ostringstream range;
  range << "a finite number " << (open_low ? "> " : ">= ") << lo;
  if (std::isfinite(hi)) range << " and " << (open_high ? "< " : "<= ") << hi;
  const std::string expected = range.str();
  return CLI::Validator(
      [=](std::string& text) -> std::string {
        return parse_real_in(text, lo, open_low, hi, open_high) ? "" : "expected " + expected + ", got '" + text + "'";
      },
      expected);
}

// Any finite real number.
inline CLI::Validator finite_real() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        return parse_whole_finite(text) ? "" : "expected a finite number, got '" + text + "'";
      },
      "a finite number");
}

// Text that is not empty (a file name, a revision, a name).
inline CLI::Validator non_empty() {
  return CLI::Validator([](std::string& text) -> std::string { return text.empty() ? "expected a non-empty value" : ""; },
                        "non-empty");
}

}  // namespace ped::cli
