// Every op of the sweep (reference layers and attention kernels), at its default shapes, variants and
// masks, against each of its references in both dtypes.
#include <gtest/gtest.h>

#include <set>

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
  std::set<std::string> references_seen;
  bool saw_float = false, saw_double = false;
  for (const CheckRow& r : rows) {
    references_seen.insert(r.reference);
    saw_float |= r.dtype == "float";
    saw_double |= r.dtype == "double";
    EXPECT_TRUE(r.passed) << r.op << " " << r.dtype << " [" << r.shape << "] vs " << r.reference << ": " << r.quantity
                          << " norm_rel_err=" << r.metrics.norm_rel_err << " tolerance=" << r.tolerance << " ("
                          << r.detail << ")";
  }
  EXPECT_TRUE(saw_float && saw_double);
  for (Reference ref : find_op_case(GetParam()).references) {
    EXPECT_TRUE(references_seen.count(to_string(ref))) << "no check against " << to_string(ref);
  }
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
