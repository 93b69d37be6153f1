// The 16-bit floating-point dtypes of the plugin ABI (PED_DTYPE_BFLOAT16, PED_DTYPE_FLOAT16) as bit
// patterns, and their conversions from and to float: round to nearest, ties to even; NaN stays a
// (quiet) NaN, overflow becomes an infinity, float16 keeps its subnormals. Every bfloat16 and
// float16 value is a float, so the conversion to float is exact.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace ped::plugin {

struct BFloat16 {
  std::uint16_t bits;
};
struct Float16 {
  std::uint16_t bits;
};

inline std::uint32_t float_bits(float x) {
  std::uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return u;
}

inline float float_of_bits(std::uint32_t u) {
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// bfloat16 is the upper half of a float: round away the lower 16 bits.
inline BFloat16 to_bfloat16(float x) {
  const std::uint32_t u = float_bits(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return {static_cast<std::uint16_t>((u >> 16) | 0x0040u)};  // quiet NaN
  return {static_cast<std::uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16)};
}

inline float to_float(BFloat16 x) { return float_of_bits(static_cast<std::uint32_t>(x.bits) << 16); }

// binary16: 5 exponent bits (bias 15), 10 fraction bits; largest finite 65504, smallest normal
// 2^-14, subnormals in steps of 2^-24.
inline Float16 to_float16(float x) {
  const std::uint32_t u = float_bits(x);
  const auto sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return {static_cast<std::uint16_t>(sign | 0x7e00u)};  // NaN
  if (a >= 0x477ff000u) return {static_cast<std::uint16_t>(sign | 0x7c00u)};  // >= 65520: rounds to infinity
  if (a >= 0x38800000u) {  // >= 2^-14: normal; rebias the exponent (127 -> 15), round away 13 bits
    const std::uint32_t r = a - 0x38000000u;
    return {static_cast<std::uint16_t>(sign | ((r + 0x0fffu + ((r >> 13) & 1u)) >> 13))};
  }
  // subnormal or zero: the multiple of 2^-24 nearest to |x| (a carry to 1024 is the smallest normal)
  const float units = std::nearbyint(float_of_bits(a) * 16777216.0f);
  return {static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(units))};
}

inline float to_float(Float16 x) {
  const std::uint32_t sign = static_cast<std::uint32_t>(x.bits & 0x8000u) << 16;
  const std::uint32_t exponent = (x.bits >> 10) & 0x1fu, fraction = x.bits & 0x3ffu;
  if (exponent == 0) {
    const float magnitude = std::ldexp(static_cast<float>(fraction), -24);
    return sign ? -magnitude : magnitude;
  }
  if (exponent == 31) return float_of_bits(sign | 0x7f800000u | (fraction << 13));
  return float_of_bits(sign | ((exponent + 112u) << 23) | (fraction << 13));
}

}  // namespace ped::plugin
