// Statistics for benchmark samples: medians and the two-sided Mann-Whitney U test.
//
// U test (as scipy.stats.mannwhitneyu(x, y, alternative="two-sided"), which Google Benchmark's
// tools/compare.py calls):
//   U_x = #{(i, j): x_i > y_j} + 0.5 #{(i, j): x_i == y_j} = R_x - n_x (n_x + 1) / 2,
//   U_y = n_x n_y - U_x,   U = max(U_x, U_y).
// p-value, chosen by the data:
// - exact, when the pooled sample has no ties and n_x + n_y <= 50: under H0 every one of the
//   C(n_x + n_y, n_x) orderings is equally likely, and the number with U_x = u is the coefficient of
//   q^u in the Gaussian binomial [n_x + n_y choose n_x]_q; p = 2 P(U_x >= U), capped at 1.
//   (scipy's "auto" uses exact only when a sample has <= 8 values, so for 9 vs 9 it reports the
//   normal approximation, which overstates p: 4.1e-4 instead of the exact 4.1e-5 for full separation.)
// - otherwise the normal approximation with tie correction and continuity correction:
//   mu = n_x n_y / 2, sigma^2 = n_x n_y / 12 ((n + 1) - sum_k (t_k^3 - t_k) / (n (n - 1))),
//   z = (U - mu - 0.5) / sigma, p = 2 (1 - Phi(z)) = erfc(z / sqrt 2), capped at 1;
//   sigma = 0 (every value equal) gives p = 1. n = n_x + n_y, t_k the size of the k-th tie group.
#pragma once

#include <span>
#include <vector>

namespace ped::reports {

// Median of the values (mean of the middle two for an even count). Throws on an empty span.
double median(std::span<const double> values);

enum class UTestMethod { exact, normal_approximation };

struct MannWhitneyResult {
  double u_x = 0.0;  // U of the first sample, as scipy's `statistic`
  double p_value = 1.0;
  UTestMethod method = UTestMethod::exact;
  bool ties = false;
};

// The largest pooled size for the exact distribution: the count C(50, 25) ~ 1.3e14 and every
// intermediate coefficient stay exact in a double (below 2^53).
inline constexpr std::size_t max_exact_u_test_size = 50;

// Two-sided Mann-Whitney U test of x against y. Throws std::invalid_argument on an empty sample or
// a NaN value.
MannWhitneyResult mann_whitney_u(std::span<const double> x, std::span<const double> y);

// Coefficients c[u], u = 0 .. m n, of the Gaussian binomial [m + n choose m]_q: c[u] is the number of
// orderings of m x-values and n y-values with U_x = u.
std::vector<double> u_statistic_counts(std::size_t m, std::size_t n);

}  // namespace ped::reports
