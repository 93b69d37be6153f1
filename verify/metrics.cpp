#include "verify/metrics.hpp"

#include <algorithm>

#include "verify/tolerance.hpp"

#include <cmath>
#include <limits>
#include <sstream>

namespace ped::verify {

ErrorMetrics compare_tensors(const arma::mat& ours_in, const arma::mat& reference_in, double norm_floor,
                             bool infinities_allowed) {
  arma::mat ours = ours_in, reference = reference_in;
  ErrorMetrics m;
  if (ours.n_rows != reference.n_rows || ours.n_cols != reference.n_cols) {
    std::ostringstream os;
    os << "shape mismatch: ours (" << ours.n_rows << " x " << ours.n_cols << "), reference (" << reference.n_rows
       << " x " << reference.n_cols << ")";
    m.comparable = false;
    m.problem = os.str();
    m.max_abs_err = m.max_rel_err = m.norm_rel_err = std::numeric_limits<double>::infinity();
    return m;
  }
  if (infinities_allowed && ours.n_rows == reference.n_rows && ours.n_cols == reference.n_cols) {
    for (arma::uword e = 0; e < ours.n_elem; ++e) {
      if (std::isinf(ours(e)) && ours(e) == reference(e)) ours(e) = reference(e) = 0.0;
    }
  }
  const arma::uvec nonfinite_ours = arma::find_nonfinite(ours);
  const arma::uvec nonfinite_ref = arma::find_nonfinite(reference);
  if (!nonfinite_ours.is_empty() || !nonfinite_ref.is_empty()) {
    std::ostringstream os;
    if (!nonfinite_ours.is_empty()) {
      os << nonfinite_ours.n_elem << " NaN/Inf value(s) in ours (first at flat index " << nonfinite_ours(0) << ")";
    }
    if (!nonfinite_ref.is_empty()) {
      os << (nonfinite_ours.is_empty() ? "" : "; ") << nonfinite_ref.n_elem
         << " NaN/Inf value(s) in the reference (first at flat index " << nonfinite_ref(0) << ")";
    }
    m.comparable = false;
    m.problem = os.str();
    m.max_abs_err = m.max_rel_err = m.norm_rel_err = std::numeric_limits<double>::quiet_NaN();
    return m;
  }
  if (ours.n_elem == 0) return m;
  const arma::mat diff = arma::abs(ours - reference);
  const double ref_max = arma::abs(reference).max();
  const double floor = ref_max > 0 ? 1e-3 * ref_max : std::numeric_limits<double>::min();
  m.max_abs_err = diff.max();
  m.max_rel_err = (diff / arma::clamp(arma::abs(reference), floor, std::numeric_limits<double>::max())).max();
  m.norm_rel_err = arma::norm(ours - reference, "fro") /
                   std::max({arma::norm(reference, "fro"), norm_floor, std::numeric_limits<double>::min()});
  return m;
}

double norm_floor_of(const std::vector<arma::mat>& tensors) {
  double largest = 0;
  for (const arma::mat& t : tensors) {
    if (t.is_finite()) largest = std::max(largest, arma::norm(t, "fro"));
  }
  return kZeroGradientFloor * largest;
}

bool within_tolerance(const ErrorMetrics& m, double tolerance) { return m.comparable && m.norm_rel_err <= tolerance; }

CheckRow make_row(const std::string& quantity, const ErrorMetrics& m, double tolerance, std::string detail) {
  CheckRow row;
  row.quantity = quantity;
  row.metrics = m;
  row.tolerance = tolerance;
  row.passed = within_tolerance(m, tolerance);
  row.detail = m.comparable ? std::move(detail) : m.problem;
  return row;
}

}  // namespace ped::verify
