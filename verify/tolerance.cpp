#include "verify/tolerance.hpp"

#include <algorithm>
#include <stdexcept>

#include "verify/reduced_precision.hpp"

namespace ped::verify {

const std::vector<ToleranceEntry>& tolerance_table() {
  static const std::vector<ToleranceEntry> table = {
      {Dtype::f64, Reference::libtorch, kTolDoubleLibtorch,
       "both sides compute the same math in double with different summation orders and libm calls; for the "
       "sizes in the sweep (reductions of at most a few thousand terms, softmax and layer norm conditioning of "
       "order 10-100) the differences stay below 1e3 * eps(double) = 2.2e-13 (observed worst 1.5e-14, "
       "attention); 1e-11 leaves margin for other BLAS kernels"},
      {Dtype::f32, Reference::libtorch, kTolFloatLibtorch,
       "two independent float computations each carry errors of order n * eps(float) relative (n the reduction "
       "length, eps = 1.2e-7); for n <= a few hundred and the same conditioning that is 1e-5 (observed worst "
       "5.7e-6, transformer block); 1e-4 keeps a margin and is still four orders of magnitude below the O(1) "
       "errors of a wrong derivative"},
      {Dtype::f64, Reference::finite_difference, kTolDoubleFiniteDifference,
       "the five-point central stencil has truncation error O(h^4) and rounding error O(eps / h); with "
       "h = eps^(1/5) * scale both are about 1e-13 relative, amplified by the size of the fifth derivative and "
       "by cancellation in v^T J u (observed worst 2.0e-10, transformer block); 1e-8 keeps a margin of 50 and "
       "still catches any derivative wrong by a term of relative size 1e-8"},
      {Dtype::f32, Reference::finite_difference, kTolFloatFiniteDifference,
       "differences in double at the same float-rounded point: the float backward's own rounding error "
       "dominates, as against LibTorch float (observed worst 3.7e-6, attention)"},
      {Dtype::f64, Reference::naive, kTolDoubleNaive,
       "two of our kernels in double, differing in summation order only (tiles, the online softmax's "
       "rescaling, the recomputed P): errors of order n * eps(double) as against LibTorch double (observed "
       "worst 1.6e-15, flash, explicit blocks)"},
      {Dtype::f32, Reference::naive, kTolFloatNaive,
       "the naive kernel accumulates in double, the tiled kernels in float: the float kernel's own rounding "
       "error of order n * eps(float), as against LibTorch float (observed worst 9.4e-7, blocked, explicit "
       "blocks)"},
  };
  return table;
}

double default_tolerance(Dtype dtype, Reference reference) {
  for (const ToleranceEntry& e : tolerance_table()) {
    if (e.dtype == dtype && e.reference == reference) return e.value;
  }
  throw std::logic_error(std::string("default_tolerance: no entry for ") + to_string(dtype) + " vs " +
                         to_string(reference));
}

double accuracy_floor(double rounding_err, double eps) { return std::max(2 * rounding_err, 2 * eps); }

double accuracy_bound(double reference_err, double floor) { return kAccuracyCriterionFactor * reference_err + floor; }

double reduced_precision_floor(Dtype dtype) { return reduced_epsilon(dtype); }

double tolerance_for(const Problem& problem, Dtype dtype, Reference reference) {
  if (is_reduced(dtype)) return reduced_precision_floor(dtype);
  if (dtype == Dtype::f64 && reference == Reference::finite_difference && problem.tolerance_finite_difference_f64) {
    return *problem.tolerance_finite_difference_f64;
  }
  const std::optional<double>& over = dtype == Dtype::f64 ? problem.tolerance_f64 : problem.tolerance_f32;
  return over ? *over : default_tolerance(dtype, reference);
}

}  // namespace ped::verify
