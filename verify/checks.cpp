// Both references over the dtypes asked for, as the sweep and the tests run them.
#include <limits>
#include <sstream>
#include <stdexcept>

#include "verify/checks.hpp"
#include "verify/reduced_precision.hpp"
#include "verify/tolerance.hpp"

namespace ped::verify {

std::vector<CheckRow> compare_pass(const Problem& p, const Tensors& ours_out, const Tensors& ref_out,
                                   const Tensors& ours_grad, const Tensors& ref_grad, double tolerance,
                                   const std::string& how, Reference reference) {
  std::vector<CheckRow> rows;
  const double out_floor = norm_floor_of(ref_out), grad_floor = norm_floor_of(ref_grad);
  for (std::size_t k = 0; k < p.outputs.size(); ++k) {
    const arma::mat ours = k < ours_out.size() ? ours_out[k] : arma::mat();
    rows.push_back(make_row(p.outputs[k],
                            compare_tensors(ours, ref_out.at(k), out_floor, p.infinity_allowed(p.outputs[k])),
                            tolerance, how));
  }
  const std::vector<std::size_t> idx = p.backward ? p.differentiable_indices() : std::vector<std::size_t>{};
  for (std::size_t g = 0; g < idx.size(); ++g) {
    const arma::mat ours = g < ours_grad.size() ? ours_grad[g] : arma::mat();
    rows.push_back(
        make_row("d" + p.inputs[idx[g]].name, compare_tensors(ours, ref_grad.at(g), grad_floor), tolerance, how));
  }
  for (CheckRow& r : rows) r.reference = to_string(reference);
  return rows;
}

std::vector<CheckRow> check_against_naive(const Problem& p, Dtype dtype) {
  if (!p.naive_forward || !p.naive_backward) return {};
  const Tensors in = rounded_to(p.input_values(), dtype);
  const Tensors ours_out = p.forward(dtype, in), ref_out = p.naive_forward(dtype, in);
  const Tensors dout = random_cotangents(p, ref_out, dtype);
  const Tensors ours_grad = p.backward ? p.backward(dtype, in, dout) : Tensors{};
  const Tensors ref_grad = p.backward ? p.naive_backward(dtype, in, dout) : Tensors{};
  return compare_pass(p, ours_out, ref_out, ours_grad, ref_grad, tolerance_for(p, dtype, Reference::naive),
                      std::string("ours ") + to_string(dtype) + " vs the naive kernel " + to_string(dtype),
                      Reference::naive);
}

CheckRow failed_check_row(const Problem& p, Dtype dtype, Reference reference, const std::string& detail) {
  CheckRow r{.reference = to_string(reference), .quantity = "*"};
  r.metrics.comparable = false;
  r.metrics.norm_rel_err = r.metrics.max_abs_err = r.metrics.max_rel_err = std::numeric_limits<double>::quiet_NaN();
  r.tolerance = tolerance_for(p, dtype, reference);
  r.passed = false;
  r.detail = detail;
  return r;
}

std::vector<CheckRow> check_one(const Problem& p, Dtype dt, Reference ref, const FiniteDifferenceOptions& options) {
  try {
    if (is_reduced(dt)) return check_reduced_precision(p, dt);  // check_problem asks for libtorch only
    if (ref == Reference::libtorch) return check_against_libtorch(p, dt);
    if (ref == Reference::finite_difference) return check_against_finite_differences(p, dt, options);
    return check_against_naive(p, dt);
  } catch (const std::exception& e) {
    // An op that throws on valid input is a failed check, reported with its message.
    return {failed_check_row(p, dt, ref, std::string("exception: ") + e.what())};
  }
}

bool check_runs(const Problem& p, Dtype dt, Reference ref) {
  if (!p.has_dtype(dt)) return false;
  // 16-bit dtypes: one check against the float64 truth, measured against LibTorch's error in the
  // same dtype (verify/reduced_precision.hpp); no finite differences, and naive is the truth.
  if (is_reduced(dt)) return ref == Reference::libtorch;
  // Finite differences differentiate the implementation's own double forward and check its
  // backward: without either there is nothing to compare.
  if (ref == Reference::finite_difference) return p.backward && p.has_dtype(Dtype::f64);
  if (ref == Reference::naive) return p.naive_forward && p.naive_backward;
  return true;
}

std::vector<CheckRow> check_problem(const Problem& p, const std::vector<Dtype>& dtypes,
                                    const std::vector<Reference>& references,
                                    const FiniteDifferenceOptions& options, double tolerance_scale,
                                    std::chrono::milliseconds isolated_time_limit) {
  if (!(tolerance_scale > 0 && tolerance_scale <= 1)) {
    throw std::invalid_argument("check_problem: tolerance_scale = " + std::to_string(tolerance_scale) +
                                ", expected (0, 1]");
  }
  std::vector<CheckRow> rows;
  for (Dtype dt : dtypes) {
    for (Reference ref : references) {
      if (!check_runs(p, dt, ref)) continue;
      std::vector<CheckRow> part = p.isolate ? check_one_in_child(p, dt, ref, options, isolated_time_limit)
                                           : check_one(p, dt, ref, options);
      const bool overridden =
          !is_reduced(dt) && (dt == Dtype::f64 ? p.tolerance_f64 : p.tolerance_f32).has_value();
      for (CheckRow& r : part) {
        if (overridden && !p.tolerance_reason.empty()) r.detail += "; tolerance: " + p.tolerance_reason;
        if (tolerance_scale != 1) {
          std::ostringstream note;
          note << "; tolerance " << r.tolerance << " scaled by " << tolerance_scale;
          r.tolerance *= tolerance_scale;
          r.passed = within_tolerance(r.metrics, r.tolerance);
          r.detail += note.str();
        }
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
