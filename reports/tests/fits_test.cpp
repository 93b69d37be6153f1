#include "reports/fits.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace ped::reports {
namespace {

TEST(FitLogLog, QuadraticTimeHasSlopeTwo) {
  // time = c N^2: log t = log c + 2 log N exactly.
  const double c = 3.7;
  std::vector<double> n;
  std::vector<double> t;
  for (double N = 128; N <= 16384; N *= 2) {
    n.push_back(N);
    t.push_back(c * N * N);
  }
  const LogLogFit fit = fit_log_log(n, t);
  EXPECT_NEAR(fit.slope, 2.0, 1e-9);
  EXPECT_NEAR(fit.intercept, std::log(c), 1e-9);
  EXPECT_NEAR(fit.r_squared, 1.0, 1e-12);
  EXPECT_EQ(fit.points, n.size());
}

TEST(FitLogLog, NoisyDataHasRSquaredBelowOne) {
  const std::vector<double> n = {1, 2, 4, 8};
  const std::vector<double> y = {1, 2.5, 3.5, 9};
  const LogLogFit fit = fit_log_log(n, y);
  EXPECT_GT(fit.r_squared, 0.9);
  EXPECT_LT(fit.r_squared, 1.0);
}

TEST(FitLogLog, RejectsBadInput) {
  EXPECT_THROW(fit_log_log(std::vector<double>{1}, std::vector<double>{1}), std::invalid_argument);
  EXPECT_THROW(fit_log_log(std::vector<double>{1, 2}, std::vector<double>{1, 0}), std::invalid_argument);
  EXPECT_THROW(fit_log_log(std::vector<double>{4, 4}, std::vector<double>{1, 2}), std::invalid_argument);
  EXPECT_THROW(fit_log_log(std::vector<double>{1, 2}, std::vector<double>{1}), std::invalid_argument);
}

TEST(FindCrossovers, PowerLawsCrossWhereTheyAreEqual) {
  // a = 1e3 N^2, b = 1e5 N^1.5: equal where N^0.5 = 100, N = 1e4; a is faster below, b above.
  std::vector<double> n;
  std::vector<double> a;
  std::vector<double> b;
  for (double N = 1024; N <= 65536; N *= 2) {
    n.push_back(N);
    a.push_back(1e3 * N * N);
    b.push_back(1e5 * std::pow(N, 1.5));
  }
  const std::vector<Crossover> crossings = find_crossovers(n, a, b);
  ASSERT_EQ(crossings.size(), 1u);
  EXPECT_NEAR(crossings[0].n, 1e4, 1e4 * 1e-9);
  EXPECT_FALSE(crossings[0].a_faster_after);  // b overtakes a
  const std::vector<Crossover> swapped = find_crossovers(n, b, a);
  ASSERT_EQ(swapped.size(), 1u);
  EXPECT_TRUE(swapped[0].a_faster_after);
}

TEST(FindCrossovers, NoneWhenOneIsAlwaysFaster) {
  const std::vector<double> n = {1, 2, 4};
  EXPECT_TRUE(find_crossovers(n, std::vector<double>{1, 2, 3}, std::vector<double>{2, 3, 4}).empty());
}

TEST(FindCrossovers, TouchingAtAMeasuredPointCountsOnce) {
  // d = log a - log b: +, 0, - -> one crossing at the measured N = 2.
  const std::vector<Crossover> crossings =
      find_crossovers(std::vector<double>{1, 2, 4}, std::vector<double>{2, 5, 6}, std::vector<double>{1, 5, 9});
  ASSERT_EQ(crossings.size(), 1u);
  EXPECT_DOUBLE_EQ(crossings[0].n, 2.0);
  EXPECT_TRUE(crossings[0].a_faster_after);
}

TEST(FindCrossovers, RejectsUnsortedN) {
  EXPECT_THROW(find_crossovers(std::vector<double>{2, 1}, std::vector<double>{1, 1}, std::vector<double>{1, 1}),
               std::invalid_argument);
}

}  // namespace
}  // namespace ped::reports
