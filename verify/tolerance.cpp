#include "verify/tolerance.hpp"

namespace ped::verify {

double default_tolerance(Dtype dtype, Reference reference) {
  const bool is_double = dtype == Dtype::f64;
  switch (reference) {
    case Reference::finite_difference: return is_double ? kTolDoubleFiniteDifference : kTolFloatFiniteDifference;
    case Reference::libtorch:
    case Reference::naive: return is_double ? kTolDoubleLibtorch : kTolFloatLibtorch;
  }
  return 0;
}

double tolerance_for(const Problem& problem, Dtype dtype, Reference reference) {
  const std::optional<double>& over = dtype == Dtype::f64 ? problem.tolerance_f64 : problem.tolerance_f32;
  return over ? *over : default_tolerance(dtype, reference);
}

}  // namespace ped::verify
