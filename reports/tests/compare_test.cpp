// The regression gate on synthetic runs with a known answer.
#include "reports/compare.hpp"
#include "core/errors.hpp"
#include "tests/test_files.hpp"

#include <gtest/gtest.h>

namespace ped::reports {
namespace {

namespace fs = std::filesystem;
using testing::synthetic_samples;
using testing::write_synthetic_run;

std::vector<Sample> plain(const std::vector<MeasuredSample>& measured) {
  std::vector<Sample> samples;
  for (const MeasuredSample& m : measured) samples.push_back(m.sample);
  return samples;
}

std::size_t count(const std::vector<Comparison>& comparisons, Verdict verdict) {
  return static_cast<std::size_t>(std::count_if(comparisons.begin(), comparisons.end(),
                                                [&](const Comparison& c) { return c.verdict == verdict; }));
}

TEST(CompareSamples, IdenticalSamplesAreUnchanged) {
  const std::vector<Sample> run = plain(synthetic_samples(1.0, 9, 1));
  const std::vector<Comparison> comparisons = compare_samples(run, run, {});
  ASSERT_EQ(comparisons.size(), 3u);
  for (const Comparison& c : comparisons) {
    EXPECT_EQ(c.verdict, Verdict::unchanged);
    EXPECT_DOUBLE_EQ(c.ratio, 1.0);
    EXPECT_DOUBLE_EQ(c.test->p_value, 1.0);
  }
  EXPECT_FALSE(has_regression(comparisons));
}

TEST(CompareSamples, TwentyPercentSlowdownWithNineRepetitionsRegresses) {
  const std::vector<Comparison> comparisons =
      compare_samples(plain(synthetic_samples(1.0, 9, 1)), plain(synthetic_samples(1.2, 9, 2)), {});
  EXPECT_EQ(count(comparisons, Verdict::regressed), 3u);
  for (const Comparison& c : comparisons) {
    EXPECT_NEAR(c.ratio, 1.2, 0.05);
    EXPECT_LT(c.test->p_value, 1e-3);
    EXPECT_EQ(c.test->method, UTestMethod::exact);
  }
  EXPECT_TRUE(has_regression(comparisons));
  // The same shift the other way is an improvement, never a regression.
  const std::vector<Comparison> reverse =
      compare_samples(plain(synthetic_samples(1.2, 9, 2)), plain(synthetic_samples(1.0, 9, 1)), {});
  EXPECT_EQ(count(reverse, Verdict::improved), 3u);
  EXPECT_FALSE(has_regression(reverse));
}

TEST(CompareSamples, PureNoiseIsNotARegression) {
  // Same distribution, different fixed seeds: no benchmark may be flagged.
  for (unsigned seed = 10; seed < 20; ++seed) {
    const std::vector<Comparison> comparisons =
        compare_samples(plain(synthetic_samples(1.0, 9, seed)), plain(synthetic_samples(1.0, 9, seed + 100)), {});
    EXPECT_FALSE(has_regression(comparisons)) << "seed " << seed;
  }
}

TEST(CompareSamples, SmallShiftBelowThresholdIsUnchangedEvenIfSignificant) {
  // 3% slower, 2% noise, 30 repetitions: likely significant, but under the 5% threshold.
  const std::vector<Comparison> comparisons =
      compare_samples(plain(synthetic_samples(1.0, 30, 3)), plain(synthetic_samples(1.03, 30, 4)), {});
  EXPECT_FALSE(has_regression(comparisons));
}

TEST(CompareSamples, FewerThanNineRepetitionsAreNotGated) {
  const std::vector<Comparison> comparisons =
      compare_samples(plain(synthetic_samples(1.0, 5, 1)), plain(synthetic_samples(2.0, 5, 2)), {});
  EXPECT_EQ(count(comparisons, Verdict::not_gated), 3u);
  EXPECT_FALSE(has_regression(comparisons));
  EXPECT_NE(comparisons[0].note.find("only 5 repetitions (need 9)"), std::string::npos);
  EXPECT_TRUE(comparisons[0].test.has_value());  // still reported
}

TEST(CompareSamples, UnmatchedBenchmarksAreListed) {
  std::vector<Sample> base = plain(synthetic_samples(1.0, 9, 1));
  std::vector<Sample> next = base;
  for (Sample& s : next) {
    if (s.key.variant == "naive") s.key.variant = "blocked";
  }
  const std::vector<Comparison> comparisons = compare_samples(base, next, {});
  EXPECT_EQ(count(comparisons, Verdict::only_in_base), 1u);
  EXPECT_EQ(count(comparisons, Verdict::only_in_new), 1u);
  EXPECT_FALSE(has_regression(comparisons));
  const std::string table = format_comparison_table(comparisons, {});
  EXPECT_NE(table.find("only in new"), std::string::npos);
}

TEST(CompareSamples, RejectsBadOptions) {
  const std::vector<Sample> run = plain(synthetic_samples(1.0, 9, 1));
  EXPECT_THROW(compare_samples(run, run, {.threshold = 0.05, .alpha = 1.5}), std::invalid_argument);
  EXPECT_THROW(compare_samples(run, run, {.threshold = -1.0}), std::invalid_argument);
}

TEST(ReadBenchmarkSet, FindsTheSamplesCompanionAndChecksItsKeys) {
  TempDirectory dir("ped-compare-test-");
  const fs::path csv = write_synthetic_run(dir.path(), "base", 1.0, 9, 1);
  const BenchmarkSet set = read_benchmark_set(csv);
  EXPECT_EQ(set.rows.size(), 3u);
  EXPECT_EQ(set.samples.size(), 27u);
  const fs::path other = write_synthetic_run(dir.path(), "other", 1.0, 9, 1);
  std::string samples = testing::read_text(samples_path_for(other));
  samples += "mystery,forward,float,1,8,1024,64,causal,2,0,5,8,1024,\n";
  testing::write_text(samples_path_for(other), samples);
  try {
    read_benchmark_set(other);
    FAIL() << "no error";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("other.samples.csv:29: sample of attention/mystery/"), std::string::npos)
        << error.what();
  }
}

TEST(ReadBenchmarkSet, SampleCountMustMatchRepetitions) {
  TempDirectory dir("ped-compare-test-");
  const fs::path csv = write_synthetic_run(dir.path(), "base", 1.0, 9, 1);
  std::string samples = testing::read_text(samples_path_for(csv));
  samples.erase(samples.rfind('\n', samples.size() - 2) + 1);  // drop the last sample (naive, repetition 8)
  testing::write_text(samples_path_for(csv), samples);
  try {
    read_benchmark_set(csv);
    FAIL() << "no error";
  } catch (const InputError& error) {
    EXPECT_NE(std::string(error.what()).find("base.samples.csv: 8 samples of attention/naive/forward/float/causal/"
                                             "B:1/H:8/N:1024/d:64/T:2, but"),
              std::string::npos)
        << error.what();
    EXPECT_NE(std::string(error.what()).find(":4 gives repetitions 9"), std::string::npos) << error.what();
  }
}

}  // namespace
}  // namespace ped::reports
