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

// FlashAttention's accuracy criterion (its tests: rtol 2, atol 2 max|(ref + 0.3) - 0.3 - ref|), in
// the normwise error of metrics.hpp against a truth computed in a wider type from the same rounded
// inputs: pass when
//   err(ours) <= kAccuracyCriterionFactor x err(LibTorch in the same dtype) + floor.
// The factor allows for a kernel that rounds differently from LibTorch (another summation order, a
// fused softmax) but not for one that loses more precision than the dtype forces.
inline constexpr double kAccuracyCriterionFactor = 2;
double accuracy_bound(double reference_err, double floor);  // kAccuracyCriterionFactor x reference_err + floor

// The floor in float and double (verify/tests/sdpa_accuracy_test.cpp):
//   max(2 x err((truth + 0.3) - 0.3 evaluated in the dtype), 2 eps(dtype)).
// The first term is FlashAttention's: the rounding of one addition at magnitude 0.3 or more, the
// dtype's resolution near the values compared. It is 0 where that sum happens to be exact (lse,
// whose values are far above 0.3), and then a one-ulp difference would fail, so the floor is at
// least 2 eps, the rounding of the stored result itself (observed: lse 1.7e-16 against LibTorch's
// 8.2e-17 in double without FMA).
double accuracy_floor(double rounding_err, double eps);

// The floor in bfloat16 and float16 (verify/reduced_precision.hpp): eps of the dtype, 2^-7 = 7.8e-3
// (bfloat16) and 2^-10 = 9.8e-4 (float16). A result stored in the dtype is off the truth by up to
// eps / 2 per element, so normwise by at most eps / 2 even when computed exactly: the floor is twice
// that, the error of a perfect kernel with a factor 2 like LibTorch's term. (FlashAttention's (truth
// + 0.3) - 0.3 term is evaluated in its float32 reference there, far below this.) The floor is of the
// order of LibTorch's own error term, so the bound stays small enough that a kernel accumulating in
// the 16-bit dtype fails. Observed at Nq = 64, Nk = 256, d = 128, causal (the example plugins' test):
//   bfloat16: LibTorch 5.5e-3 (out), bound 1.9e-2; the simple plugin 1.7e-3; one that rounds every
//             sum to the dtype 4.4e-2 (out), 4.3e-2 (dq)
//   float16:  LibTorch 6.8e-4 (out), bound 2.3e-3; the simple plugin 2.1e-4; the rounding one 4.3e-3
// A floor of 2 eps instead (the float and double rule) let that kernel pass at Nk = 64, d = 64.
double reduced_precision_floor(Dtype dtype);

// The tolerance_table() entry of dtype x reference.
double default_tolerance(Dtype dtype, Reference reference);

// The problem's own override where it has one (tolerance_finite_difference_f64 for a double
// finite-difference check, else tolerance_f32 / tolerance_f64), else the default. For bfloat16 and float16, whose
// tolerance is computed per check (accuracy_bound), reduced_precision_floor: the tolerance of a check
// that could not run.
double tolerance_for(const Problem& problem, Dtype dtype, Reference reference);

}  // namespace ped::verify
