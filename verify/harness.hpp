// The verification harness as a library, for another project's tests (installed with pedestrian as
// <verify/harness.hpp>, target pedestrian::verify):
//
//   - check_attention: an attention implementation (an AttentionImpl of variants/registry.hpp, in the
//     same process, no plugin) through the checks `verify` runs on a built-in kernel: ops sdpa,
//     sdpa_large_scores and sdpa_features (the AttentionFeatures it declares in
//     AttentionImpl::features; none declared: no rows of that op), every mask kind it takes, the
//     default shapes, against the naive kernel,
//     LibTorch autograd and finite differences, in float and double;
//   - register_attention_tests / PED_ATTENTION_TESTS: the same checks as GoogleTest cases, one per
//     op x dtype x reference x mask, each failing with the rows that disagreed;
//   - gradcheck: a layer's backward against central finite differences of its forward, as `verify`
//     checks the reference layers (full Jacobian for small sizes, random directions v^T J u above).
//
// The rows are the rows `verify` writes to its CSV (verify/metrics.hpp: CheckRow), with the same
// error metrics and tolerances (verify/tolerance.hpp).
#pragma once

#include <armadillo>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "variants/registry.hpp"
#include "verify/checks.hpp"
#include "verify/metrics.hpp"
#include "verify/sweep.hpp"

namespace ped::verify {

// The rows of a check and its verdict.
struct Verdict {
  std::vector<CheckRow> rows;

  std::size_t failures() const;
  // At least one row, and every row passed: a check that compared nothing does not pass.
  bool passed() const;
  // One line per failed row (at most max_rows, then how many more): op, variant, dtype, shape, mask,
  // reference, quantity, norm_rel_err against the tolerance, max_abs_err, max_rel_err, detail; or
  // "no check ran" when there are no rows. Empty when passed().
  std::string failure_report(std::size_t max_rows = 20) const;
};

struct AttentionCheckOptions {
  std::vector<std::string> ops = {"sdpa", "sdpa_large_scores", "sdpa_features"};
  std::vector<Dims> shapes;        // empty: each op's default shapes (Dims: N queries, Nk keys, B, H, Dh)
  // Empty: every mask family the implementation takes (verify --list names them). Else texts read as
  // verify --masks reads its items, by the same code (verify/sweep.hpp: mask_choice, op_takes_mask,
  // check_mask_fits): a family name (the sweep's sample of that kind, sized to each shape) or a
  // concrete mask in Mask::parse's text, e.g. "sliding_window(left=256,right=0)", whose rows carry
  // its Mask::name(). A text that is neither, or a concrete mask that does not fit a shape, is refused.
  std::vector<std::string> masks;
  std::vector<Dtype> dtypes = {Dtype::f32, Dtype::f64};  // those the implementation has
  std::vector<Reference> references;                     // empty: each op's (naive, libtorch, finite_difference)
  std::vector<std::uint64_t> seeds = {1, 2};
  FiniteDifferenceOptions fd;
  double tolerance_scale = 1;                // in (0, 1]: tightens only
  double memory_budget_gib = kDefaultMemoryBudgetGib;
  // Time each check of an implementation marked `isolate` (a plugin) may run in its child process,
  // as verify --plugin-timeout: past it the child is killed and the check is a failed row naming the
  // case and the limit. Must be > 0.
  std::chrono::milliseconds isolated_time_limit = plugin::kDefaultPluginTimeLimit;
  std::string csv_path;                      // non-empty: the rows are also written there (atomically)
};

// Checks the registered implementation `name` (a built-in, a loaded plugin, or one registered with
// register_attention_impl). Throws std::invalid_argument, naming the option, for an unknown name, an
// op that is not an attention op, a mask filter that leaves nothing to check, a selection above the
// memory budget, or sizes an op cannot take; std::runtime_error when csv_path cannot be written.
Verdict check_attention(const std::string& name, const AttentionCheckOptions& options = {});

// Registers `impl` (variants/registry.hpp: register_attention_impl, so its name must be free), then
// checks it as above.
Verdict check_attention(AttentionImpl impl, const AttentionCheckOptions& options = {});

// One GoogleTest case per check group, each run as check_attention of that group:
// <suite>.<op>_<dtype>_<reference>_<mask> (e.g. MyKernel.sdpa_float_libtorch_causal, or with a
// concrete mask MyKernel.sdpa_float_libtorch_sliding_window(left=2,right=0)), for the ops,
// masks the implementation takes, dtypes it has and references of `options` (finite differences only
// with a double forward and a backward). A failing case lists the rows that disagreed. `impl` is
// registered first; if that fails (its name is taken or malformed) the single case
// <suite>.registration fails with the reason. Returns the number of cases registered. Call it before
// RUN_ALL_TESTS (PED_ATTENTION_TESTS does so at static initialisation). options.csv_path is not
// written by the cases (each would overwrite it); --gtest_output=xml:FILE gives a JUnit report.
std::size_t register_attention_tests(const std::string& suite, AttentionImpl impl,
                                     const AttentionCheckOptions& options = {});

// A layer under gradcheck: inputs -> one output, and its backward inputs, dOutput -> dInputs (one
// gradient per input, in input order, each of its input's shape).
struct LayerInput {
  std::string name;  // the row's quantity is "d" + name
  arma::mat value;
};
using LayerForward = std::function<arma::mat(const std::vector<arma::mat>& inputs)>;
using LayerBackward =
    std::function<std::vector<arma::mat>(const std::vector<arma::mat>& inputs, const arma::mat& doutput)>;

struct GradcheckOptions {
  std::string name = "layer";  // the rows' op
  FiniteDifferenceOptions fd;  // full Jacobian up to fd.full_jacobian_max_entries (outputs x inputs), else
                               // fd.directions random directions per input
  std::uint64_t seed = 1;      // random directions and output cotangents
  // Replaces the default (verify/tolerance.hpp: 1e-8 for a double backward) when set; say why in
  // tolerance_reason, which the rows' detail carries.
  std::optional<double> tolerance;
  std::string tolerance_reason;
  std::string csv_path;  // non-empty: the rows are also written there (atomically)
};

// The backward, in double, against five-point central differences of the forward, in double:
// one row per input (quantity "d<name>"), reference finite_difference, as verify's own checks.
// Throws std::invalid_argument (naming gradcheck and the argument) for no inputs, an unnamed or
// repeated input, an empty callable or a tolerance that is not a positive finite number.
Verdict gradcheck(const std::vector<LayerInput>& inputs, const LayerForward& forward, const LayerBackward& backward,
                  const GradcheckOptions& options = {});

namespace detail {
struct RegisteredAttentionTests {
  std::size_t count;
};
}  // namespace detail

}  // namespace ped::verify

// PED_ATTENTION_TESTS(Suite, impl [, options]): registers the GoogleTest cases of
// register_attention_tests at namespace scope, as TEST does. `impl` is an AttentionImpl value.
#define PED_ATTENTION_TESTS(suite, ...)                                                              \
  [[maybe_unused]] static const ::ped::verify::detail::RegisteredAttentionTests                    \
      ped_attention_tests_registered_##suite{::ped::verify::register_attention_tests(#suite, __VA_ARGS__)}
