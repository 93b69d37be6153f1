// Mann-Whitney U test and medians against values computed by hand (exact counts) and with scipy's
// formulas (normal approximation, written out in statistics.hpp).
#include "reports/statistics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <random>

namespace ped::reports {
namespace {

TEST(Median, OddAndEvenCounts) {
  EXPECT_DOUBLE_EQ(median(std::vector<double>{3.0, 1.0, 2.0}), 2.0);
  EXPECT_DOUBLE_EQ(median(std::vector<double>{4.0, 1.0, 3.0, 2.0}), 2.5);
  EXPECT_THROW(median(std::vector<double>{}), std::invalid_argument);
}

TEST(UStatisticCounts, SumToBinomialAndMatchSmallTables) {
  // m = 2, n = 2: orderings xxyy..yyxx give U_x = 0,1,2,2,3,4 -> counts 1 1 2 1 1.
  const std::vector<double> c22 = u_statistic_counts(2, 2);
  EXPECT_EQ(c22, (std::vector<double>{1, 1, 2, 1, 1}));
  // Counts sum to C(m + n, m) and are symmetric: U and m n - U are equally likely.
  const std::vector<double> c = u_statistic_counts(9, 9);
  EXPECT_DOUBLE_EQ(std::accumulate(c.begin(), c.end(), 0.0), 48620.0);  // C(18, 9)
  for (std::size_t u = 0; u < c.size(); ++u) EXPECT_EQ(c[u], c[c.size() - 1 - u]);
  const std::vector<double> big = u_statistic_counts(25, 25);
  EXPECT_DOUBLE_EQ(std::accumulate(big.begin(), big.end(), 0.0), 126410606437752.0);  // C(50, 25)
}

TEST(MannWhitneyU, ExactFullSeparationThreeVsThree) {
  // U_x = 0; P(U <= 0) = 1 / C(6, 3) = 1/20; two-sided p = 0.1 (scipy: statistic 0, pvalue 0.1).
  const MannWhitneyResult r = mann_whitney_u(std::vector<double>{1, 2, 3}, std::vector<double>{4, 5, 6});
  EXPECT_EQ(r.method, UTestMethod::exact);
  EXPECT_DOUBLE_EQ(r.u_x, 0.0);
  EXPECT_NEAR(r.p_value, 0.1, 1e-15);
}

TEST(MannWhitneyU, ExactInterleavedThreeVsFour) {
  // x = {1,3,5}, y = {2,4,6,7}: U_x = 0 + 1 + 2 = 3. Orderings with U_x <= 3 are the partitions of
  // 0..3 into at most 3 parts of size <= 4: 1 + 1 + 2 + 3 = 7 of C(7, 3) = 35; p = 2 * 7/35 = 0.4.
  const MannWhitneyResult r = mann_whitney_u(std::vector<double>{1, 3, 5}, std::vector<double>{2, 4, 6, 7});
  EXPECT_EQ(r.method, UTestMethod::exact);
  EXPECT_DOUBLE_EQ(r.u_x, 3.0);
  EXPECT_NEAR(r.p_value, 0.4, 1e-15);
}

TEST(MannWhitneyU, ExactNineVsNineFullSeparation) {
  std::vector<double> x(9);
  std::vector<double> y(9);
  for (int i = 0; i < 9; ++i) {
    x[i] = 100.0 + i;
    y[i] = 120.0 + i;
  }
  // p = 2 / C(18, 9) = 4.1135e-5, the smallest p 9 repetitions can give.
  const MannWhitneyResult r = mann_whitney_u(x, y);
  EXPECT_EQ(r.method, UTestMethod::exact);
  EXPECT_NEAR(r.p_value, 2.0 / 48620.0, 1e-18);
  EXPECT_NEAR(mann_whitney_u(y, x).p_value, r.p_value, 1e-18);  // two-sided: symmetric
  EXPECT_DOUBLE_EQ(mann_whitney_u(y, x).u_x, 81.0);
}

TEST(MannWhitneyU, NormalApproximationWithTies) {
  // x = {1,2,2,3,3}, y = {2,3,4,4,5}: mid-ranks give U_x = 4; tie groups of sizes 3, 3, 2 give
  // sum(t^3 - t) = 24 + 24 + 6 = 54; sigma^2 = 25/12 (11 - 54/90) = 21.667;
  // z = (21 - 12.5 - 0.5) / 4.6547 = 1.7187, p = erfc(z / sqrt 2) = 0.085673.
  const MannWhitneyResult r = mann_whitney_u(std::vector<double>{1, 2, 2, 3, 3}, std::vector<double>{2, 3, 4, 4, 5});
  EXPECT_EQ(r.method, UTestMethod::normal_approximation);
  EXPECT_TRUE(r.ties);
  EXPECT_DOUBLE_EQ(r.u_x, 4.0);
  EXPECT_NEAR(r.p_value, 0.08567343955231692, 1e-12);
}

TEST(MannWhitneyU, NormalApproximationForLargeSamplesWithoutTies) {
  // 30 vs 30 (pooled 60 > 50): x = 0..29, y = 15..44 have ties (15..29 twice) -> U_x = 112.5,
  // p = 6.247985e-07 by the formula; the same shift without ties goes the same way.
  std::vector<double> x(30);
  std::vector<double> y(30);
  for (int i = 0; i < 30; ++i) {
    x[i] = i;
    y[i] = 15 + i;
  }
  const MannWhitneyResult r = mann_whitney_u(x, y);
  EXPECT_EQ(r.method, UTestMethod::normal_approximation);
  EXPECT_DOUBLE_EQ(r.u_x, 112.5);
  EXPECT_NEAR(r.p_value, 6.247984928789204e-07, 1e-15);
}

TEST(MannWhitneyU, IdenticalSamplesGivePOne) {
  const std::vector<double> same(9, 1000.0);
  const MannWhitneyResult r = mann_whitney_u(same, same);
  EXPECT_EQ(r.method, UTestMethod::normal_approximation);  // all tied
  EXPECT_DOUBLE_EQ(r.p_value, 1.0);
  const std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  EXPECT_DOUBLE_EQ(mann_whitney_u(x, x).p_value, 1.0);
}

TEST(MannWhitneyU, RejectsEmptyAndNaN) {
  EXPECT_THROW(mann_whitney_u(std::vector<double>{}, std::vector<double>{1.0}), std::invalid_argument);
  EXPECT_THROW(mann_whitney_u(std::vector<double>{std::nan("")}, std::vector<double>{1.0}), std::invalid_argument);
}

TEST(MannWhitneyU, SameDistributionRarelySignificant) {
  // Under H0 the exact test rejects at most alpha of the time: over 400 seeded 9-vs-9 draws from one
  // log-normal, the rejection rate at alpha = 0.05 stays below 0.05 plus a 3-sigma binomial margin.
  std::mt19937_64 rng(12345);
  std::lognormal_distribution<double> noise(0.0, 0.05);
  int rejections = 0;
  const int trials = 400;
  for (int t = 0; t < trials; ++t) {
    std::vector<double> x(9);
    std::vector<double> y(9);
    for (double& v : x) v = 1e6 * noise(rng);
    for (double& v : y) v = 1e6 * noise(rng);
    if (mann_whitney_u(x, y).p_value < 0.05) ++rejections;
  }
  EXPECT_LT(rejections, static_cast<int>(trials * (0.05 + 3.0 * std::sqrt(0.05 * 0.95 / trials))));
}

}  // namespace
}  // namespace ped::reports
