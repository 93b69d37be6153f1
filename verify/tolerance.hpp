// The tolerance policy: pass when the normwise relative error ||ours - ref|| / ||ref|| is at most
// the tolerance for the dtype under test and the reference it is compared with.
#pragma once

#include "verify/problem.hpp"

namespace ped::verify {

// double vs LibTorch double: both sides compute the same math in double with different summation
// orders and libm calls; for the sizes in the sweep (reductions of at most a few thousand terms,
// softmax and layer norm conditioning of order 10-100) the differences stay below 1e3 * eps(double)
// = 2.2e-13 (observed worst 1.5e-14, attention); 1e-11 leaves margin for other BLAS kernels.
inline constexpr double kTolDoubleLibtorch = 1e-11;
// float vs LibTorch float: two independent float computations each carry errors of order
// n * eps(float) relative (n the reduction length, eps = 1.2e-7); for n <= a few hundred and the
// same conditioning that is 1e-5 (observed worst 5.7e-6, transformer block). 1e-4 keeps a margin and
// is still four orders of magnitude below the O(1) errors of a wrong derivative.
inline constexpr double kTolFloatLibtorch = 1e-4;
// double vs finite differences: the five-point central stencil has truncation error O(h^4) and
// rounding error O(eps / h); with h = eps^(1/5) * scale both are about 1e-13 relative, amplified by
// the size of the fifth derivative and by cancellation in v^T J u (observed worst 2.0e-10,
// transformer block); 1e-8 keeps a margin of 50 and still catches any derivative wrong by a term of
// relative size 1e-8.
inline constexpr double kTolDoubleFiniteDifference = 1e-8;
// float vs finite differences (in double, at the same float-rounded point): the float backward's own
// rounding error dominates, as against LibTorch float (observed worst 3.7e-6, attention).
inline constexpr double kTolFloatFiniteDifference = 1e-4;

// Some gradients are exactly zero in exact arithmetic: the key bias of softmax attention (adding
// q_i . bk to a whole score row leaves its softmax unchanged), the query and key weights when there is
// a single token. Both sides then hold rounding noise only, and noise over noise is a relative error
// of order 1 that says nothing. So the normwise denominator of every tensor is at least this fraction
// of the largest reference norm in the same pass (all gradients of one backward, or all outputs of
// one forward): a tensor smaller than 1% of its pass's scale is held to tolerance x 1% of that scale,
// absolutely. A wrong derivative still shows as an error of order 1 of its own norm or of that scale.
inline constexpr double kZeroGradientFloor = 1e-2;

double default_tolerance(Dtype dtype, Reference reference);

// The problem's own override where it has one, else the default.
double tolerance_for(const Problem& problem, Dtype dtype, Reference reference);

}  // namespace ped::verify
