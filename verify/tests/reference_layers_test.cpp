// Every reference op, at its default shapes, against LibTorch and finite differences in both dtypes.
#include <gtest/gtest.h>

#include <sstream>

#include "verify/report.hpp"
#include "verify/sweep.hpp"

namespace ped::verify {
namespace {

class ReferenceOp : public ::testing::TestWithParam<std::string> {};

TEST_P(ReferenceOp, MatchesLibtorchAndFiniteDifferences) {
  SweepConfig config;
  config.ops = {GetParam()};
  config.seeds = {7};
  const std::vector<CheckRow> rows = run_sweep(config);
  ASSERT_FALSE(rows.empty());
  bool saw_libtorch = false, saw_fd = false, saw_float = false, saw_double = false;
  for (const CheckRow& r : rows) {
    saw_libtorch |= r.reference == "libtorch";
    saw_fd |= r.reference == "finite_difference";
    saw_float |= r.dtype == "float";
    saw_double |= r.dtype == "double";
    EXPECT_TRUE(r.passed) << r.op << " " << r.dtype << " [" << r.shape << "] vs " << r.reference << ": " << r.quantity
                          << " norm_rel_err=" << r.metrics.norm_rel_err << " tolerance=" << r.tolerance << " ("
                          << r.detail << ")";
  }
  EXPECT_TRUE(saw_libtorch && saw_fd && saw_float && saw_double);
}

std::vector<std::string> op_names() {
  std::vector<std::string> names;
  for (const OpCase& c : op_cases()) names.push_back(c.name);
  return names;
}

INSTANTIATE_TEST_SUITE_P(AllOps, ReferenceOp, ::testing::ValuesIn(op_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace ped::verify
