// Small helpers shared by the variants: error messages and overflow-safe integer arithmetic.
// B batch, H heads, Nq query tokens, Nk key tokens, d head dim.
#pragma once

#include <cstdint>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>

namespace ped::detail {

// Throws std::invalid_argument("function: part1part2..."): every bad input names the function
// and the offending values.
template <class... Parts>
[[noreturn]] void throw_invalid(const char* function, const Parts&... parts) {
  std::ostringstream os;
  os << function << ": ";
  (os << ... << parts);
  throw std::invalid_argument(os.str());
}

// Saturating int64 arithmetic: mask bounds such as p + right may exceed int64 for huge
// parameters; saturation keeps the comparisons that follow correct.
inline std::int64_t sat_add(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return b > 0 ? std::numeric_limits<std::int64_t>::max()
                                                     : std::numeric_limits<std::int64_t>::min();
  return r;
}
inline std::int64_t sat_sub(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_sub_overflow(a, b, &r)) return b < 0 ? std::numeric_limits<std::int64_t>::max()
                                                     : std::numeric_limits<std::int64_t>::min();
  return r;
}
inline std::int64_t sat_mul(std::int64_t a, std::int64_t b) {
  std::int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return (a < 0) != (b < 0) ? std::numeric_limits<std::int64_t>::min()
                                                                   : std::numeric_limits<std::int64_t>::max();
  return r;
}
// floor(a / b) for b > 0 and any sign of a.
inline std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && (a < 0)) --q;
  return q;
}
inline std::int64_t ceil_div(std::int64_t a, std::int64_t b) { return (a + b - 1) / b; }

}  // namespace ped::detail
