// Both references over the dtypes asked for, as the sweep and the tests run them.
#include <limits>

#include "verify/checks.hpp"
#include "verify/tolerance.hpp"

namespace ped::verify {

std::vector<CheckRow> check_problem(const Problem& p, const std::vector<Dtype>& dtypes,
                                    const std::vector<Reference>& references,
                                    const FiniteDifferenceOptions& options) {
  std::vector<CheckRow> rows;
  for (Dtype dt : dtypes) {
    for (Reference ref : references) {
      std::vector<CheckRow> part;
      try {
        if (ref == Reference::libtorch) part = check_against_libtorch(p, dt);
        else if (ref == Reference::finite_difference) part = check_against_finite_differences(p, dt, options);
        else continue;
      } catch (const std::exception& e) {
        // An op that throws on valid input is a failed check, reported with its message.
        CheckRow r;
        r.quantity = "*";
        r.reference = to_string(ref);
        r.metrics.comparable = false;
        r.metrics.norm_rel_err = r.metrics.max_abs_err = r.metrics.max_rel_err =
            std::numeric_limits<double>::quiet_NaN();
        r.tolerance = tolerance_for(p, dt, ref);
        r.passed = false;
        r.detail = std::string("exception: ") + e.what();
        part.push_back(std::move(r));
      }
      const bool overridden = (dt == Dtype::f64 ? p.tolerance_f64 : p.tolerance_f32).has_value();
      for (CheckRow& r : part) {
        if (overridden && !p.tolerance_reason.empty()) r.detail += "; tolerance: " + p.tolerance_reason;
        r.op = p.op;
        r.variant = p.variant;
        r.dtype = to_string(dt);
        r.shape = p.shape;
        r.mask = p.mask;
        r.seed = p.seed;
        rows.push_back(std::move(r));
      }
    }
  }
  return rows;
}

}  // namespace ped::verify
