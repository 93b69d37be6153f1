// Small helpers shared by the variants: error messages and overflow-safe integer arithmetic (both
// from core/).
// B batch, H heads, Nq query tokens, Nk key tokens, d head dim.
#pragma once

#include "core/errors.hpp"
#include "core/integer_math.hpp"

namespace ped::detail {

// Throws std::invalid_argument("function: part1part2..."): every bad input names the function
// and the offending values (core/errors.hpp).
using ::ped::throw_invalid;

}  // namespace ped::detail
