// Error metrics of one compared tensor, and the check row the reports are made of.
#pragma once

#include <armadillo>
#include <cstdint>
#include <string>
#include <vector>

namespace ped::verify {

struct ErrorMetrics {
  double max_abs_err = 0;   // max_i |a_i - b_i|
  double max_rel_err = 0;   // max_i |a_i - b_i| / max(|b_i|, floor), floor = 1e-3 max_i |b_i|
  double norm_rel_err = 0;  // ||a - b||_F / max(||b||_F, norm_floor, tiny)
  bool comparable = true;   // false when shapes differ or a value is NaN or Inf
  std::string problem;      // why not comparable
};

// `ours` is the tensor under test, `reference` the one it must match. A NaN or Inf in either, or a
// shape mismatch, makes the comparison not comparable (and so a failure), never a pass.
// `norm_floor` bounds the normwise denominator from below (see kZeroGradientFloor in tolerance.hpp).
// With `infinities_allowed`, positions holding the same infinity on both sides agree (and are left
// out of the error norms); NaN and any other non-finite value still fail.
ErrorMetrics compare_tensors(const arma::mat& ours, const arma::mat& reference, double norm_floor = 0,
                             bool infinities_allowed = false);

// kZeroGradientFloor times the largest Frobenius norm among `tensors`: the floor of the normwise
// denominator for every tensor of the same forward or backward pass.
double norm_floor_of(const std::vector<arma::mat>& tensors);

struct CheckRow {
  std::string op, variant, dtype, shape, mask, reference, quantity;
  ErrorMetrics metrics;
  double tolerance = 0;
  bool passed = false;
  std::uint64_t seed = 0;
  std::string detail;  // how it was checked, or why it failed
};

// comparable && norm_rel_err <= tolerance: a NaN, an Inf or a shape mismatch fails whatever the tolerance.
bool within_tolerance(const ErrorMetrics& m, double tolerance);

// passed = within_tolerance(m, tolerance).
CheckRow make_row(const std::string& quantity, const ErrorMetrics& m, double tolerance, std::string detail);

}  // namespace ped::verify
