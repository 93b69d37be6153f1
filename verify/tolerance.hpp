// The tolerance policy: pass when the normwise relative error ||ours - ref|| / ||ref|| is at most
// the tolerance for the dtype under test and the reference it is compared with.
#pragma once

#include <vector>

#include "verify/problem.hpp"

namespace ped::verify {

// The default tolerances, each with its reason in tolerance_table() (verify/tolerance.cpp).
// verify/tests/tolerance_table_test.cpp pins every value (and every per-op override) and requires a
// reason for each: changing one fails a test, so it is a decision, not a side effect.
inline constexpr double kTolDoubleLibtorch = 1e-11;
inline constexpr double kTolFloatLibtorch = 1e-4;
inline constexpr double kTolDoubleFiniteDifference = 1e-8;
inline constexpr double kTolFloatFiniteDifference = 1e-4;
inline constexpr double kTolDoubleNaive = 1e-11;
inline constexpr double kTolFloatNaive = 1e-4;

struct ToleranceEntry {
  Dtype dtype;
  Reference reference;
  double value;
  const char* reason;  // why this value: the error model and the observed worst case
};

// One entry per dtype x reference, the policy default_tolerance applies.
const std::vector<ToleranceEntry>& tolerance_table();

// Some gradients are exactly zero in exact arithmetic: the key bias of softmax attention (adding
// q_i . bk to a whole score row leaves its softmax unchanged), the query and key weights when there is
// a single token. Both sides then hold rounding noise only, and noise over noise is a relative error
// of order 1 that says nothing. So the normwise denominator of every tensor is at least this fraction
// of the largest reference norm in the same pass (all gradients of one backward, or all outputs of
// one forward): a tensor smaller than 1% of its pass's scale is held to tolerance x 1% of that scale,
// absolutely. A wrong derivative still shows as an error of order 1 of its own norm or of that scale.
inline constexpr double kZeroGradientFloor = 1e-2;

// The tolerance_table() entry of dtype x reference.
double default_tolerance(Dtype dtype, Reference reference);

// The problem's own override where it has one, else the default.
double tolerance_for(const Problem& problem, Dtype dtype, Reference reference);

}  // namespace ped::verify
