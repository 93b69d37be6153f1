// The two independent references every op is checked against.
#pragma once

#include <chrono>
#include <vector>

#include "plugin_host/child_process.hpp"
#include "verify/metrics.hpp"
#include "verify/problem.hpp"

namespace ped::verify {

// Runs our forward and backward in `dtype` and the problem's LibTorch twin in the same dtype with
// autograd, on the same inputs and the same seeded output cotangents; one row per forward output
// and one per gradient of a differentiable input.
std::vector<CheckRow> check_against_libtorch(const Problem& problem, Dtype dtype);

// One row per forward output and one per gradient of a differentiable input: ours against the
// reference, each tensor's normwise denominator floored by its pass (norm_floor_of).
std::vector<CheckRow> compare_pass(const Problem& problem, const Tensors& ours_out, const Tensors& ref_out,
                                   const Tensors& ours_grad, const Tensors& ref_grad, double tolerance,
                                   const std::string& how, Reference reference);

// Our forward and backward in `dtype` against the problem's algorithmic reference (the naive
// attention kernel) in the same dtype; nothing when the problem has none.
std::vector<CheckRow> check_against_naive(const Problem& problem, Dtype dtype);

struct FiniteDifferenceOptions {
  // The full Jacobian (gradcheck's slow mode) is compared when (outputs x inputs) has at most this
  // many entries; above it, random directions v^T J u (gradcheck's fast mode).
  std::size_t full_jacobian_max_entries = 20000;
  int directions = 4;  // random directions u per input in the fast mode
};

// Central finite differences of our double forward (five-point stencil, step scaled to the input)
// against our backward in `dtype`, evaluated at the same point (inputs rounded to `dtype` first).
std::vector<CheckRow> check_against_finite_differences(const Problem& problem, Dtype dtype,
                                                       const FiniteDifferenceOptions& options = {});

// One reference in one dtype; an exception becomes one failed row (quantity "*") with its message.
std::vector<CheckRow> check_one(const Problem& problem, Dtype dtype, Reference reference,
                                const FiniteDifferenceOptions& options = {});

// check_one in a child process (isolated_checks.cpp), for code that may crash or hang: the rows come
// back through a pipe; a crash or an exit becomes one failed row naming the signal or status and the
// case, and so does a child still running after `time_limit` (killed then; zero: no limit).
std::vector<CheckRow> check_one_in_child(const Problem& problem, Dtype dtype, Reference reference,
                                         const FiniteDifferenceOptions& options = {},
                                         std::chrono::milliseconds time_limit = plugin::kDefaultPluginTimeLimit);

// A failed row of quantity "*" for `reference` in `dtype` (a check that could not compare anything).
CheckRow failed_check_row(const Problem& problem, Dtype dtype, Reference reference, const std::string& detail);

// Whether check_problem checks `problem` in `dtype` against `reference`, the one rule the sweep's
// planning and cost model use too: the implementation has the dtype; finite differences need its
// backward and its double forward; the naive reference needs the naive kernel; a 16-bit dtype is
// checked against LibTorch's error only.
bool check_runs(const Problem& problem, Dtype dtype, Reference reference);

// Both references, both dtypes, as the sweep runs them. Every tolerance is multiplied by
// `tolerance_scale`, in (0, 1] (std::invalid_argument otherwise): a check can be made stricter, never
// looser; a scaled row says so in its detail. Skips what check_runs says does not run; checks a problem marked
// `isolate` in child processes, each given `isolated_time_limit` (check_one_in_child).
std::vector<CheckRow> check_problem(const Problem& problem, const std::vector<Dtype>& dtypes,
                                    const std::vector<Reference>& references,
                                    const FiniteDifferenceOptions& options = {}, double tolerance_scale = 1,
                                    std::chrono::milliseconds isolated_time_limit = plugin::kDefaultPluginTimeLimit);

}  // namespace ped::verify
