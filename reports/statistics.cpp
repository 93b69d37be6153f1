#include "reports/statistics.hpp"

#include "core/errors.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <utility>

namespace ped::reports {

double median(std::span<const double> values) {
  if (values.empty()) throw_invalid("median", "no values");
  std::vector<double> sorted(values.begin(), values.end());
  std::sort(sorted.begin(), sorted.end());
  const std::size_t n = sorted.size();
  return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
}

std::vector<double> u_statistic_counts(std::size_t m, std::size_t n) {
  // [m + n choose m]_q = prod_{i=1..m} (1 - q^(n+i)) / (1 - q^i); after step i the polynomial is
  // [n + i choose i]_q, so every coefficient is a count of orderings and stays an exact integer.
  // The product (1 - q^(n+i)) reaches degree i n + i before the division brings it back to i n.
  std::vector<double> c(m * n + m + 1, 0.0);
  c[0] = 1.0;
  std::size_t degree = 0;
  for (std::size_t i = 1; i <= m; ++i) {
    const std::size_t grow = n + i;
    const std::size_t top = degree + grow;
    // c <- c * (1 - q^(n+i)), highest power first so c[k - grow] is still the old value
    for (std::size_t k = top; k >= grow; --k) c[k] -= c[k - grow];
    // c <- c / (1 - q^i): b[k] = a[k] + b[k - i]; the division is exact, so c[i n + 1 .. top] become 0
    for (std::size_t k = i; k <= top; ++k) c[k] += c[k - i];
    degree += n;
  }
  c.resize(m * n + 1);
  return c;
}

MannWhitneyResult mann_whitney_u(std::span<const double> x, std::span<const double> y) {
  if (x.empty() || y.empty()) throw_invalid("mann_whitney_u", "empty sample: n_x = ", x.size(), ", n_y = ", y.size());
  const std::size_t nx = x.size();
  const std::size_t ny = y.size();
  const std::size_t n = nx + ny;

  // Mid-ranks of the pooled sample; `from_x` remembers which sample each value came from.
  std::vector<std::pair<double, bool>> pooled;
  pooled.reserve(n);
  for (double v : x) pooled.emplace_back(v, true);
  for (double v : y) pooled.emplace_back(v, false);
  for (const auto& [v, from_x] : pooled) {
    if (std::isnan(v)) throw_invalid("mann_whitney_u", "NaN in sample ", from_x ? "x" : "y");
  }
  std::sort(pooled.begin(), pooled.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum_x = 0.0;
  double tie_term = 0.0;  // sum_k (t_k^3 - t_k)
  for (std::size_t start = 0; start < n;) {
    std::size_t end = start + 1;
    while (end < n && pooled[end].first == pooled[start].first) ++end;
    const double t = static_cast<double>(end - start);
    const double mid_rank = 0.5 * static_cast<double>(start + 1 + end);  // ranks start+1 .. end
    for (std::size_t k = start; k < end; ++k) {
      if (pooled[k].second) rank_sum_x += mid_rank;
    }
    tie_term += t * t * t - t;
    start = end;
  }

  const double dnx = static_cast<double>(nx);
  const double dny = static_cast<double>(ny);
  MannWhitneyResult result;
  result.u_x = rank_sum_x - dnx * (dnx + 1.0) / 2.0;
  result.ties = tie_term > 0.0;
  const double u = std::max(result.u_x, dnx * dny - result.u_x);

  if (!result.ties && n <= max_exact_u_test_size) {
    // p = 2 P(U_x >= U) = 2 P(U_x <= nx ny - U) by symmetry of the null distribution.
    const std::vector<double> counts = u_statistic_counts(nx, ny);
    const double total = std::accumulate(counts.begin(), counts.end(), 0.0);
    const auto u_low = static_cast<std::size_t>(std::llround(dnx * dny - u));
    const double tail = std::accumulate(counts.begin(), counts.begin() + static_cast<std::ptrdiff_t>(u_low) + 1, 0.0);
    result.method = UTestMethod::exact;
    result.p_value = std::min(1.0, 2.0 * tail / total);
    return result;
  }

  result.method = UTestMethod::normal_approximation;
  const double dn = static_cast<double>(n);
  const double mu = dnx * dny / 2.0;
  const double variance = dnx * dny / 12.0 * ((dn + 1.0) - tie_term / (dn * (dn - 1.0)));
  if (!(variance > 0.0)) {
    result.p_value = 1.0;  // every pooled value equal: no evidence of a shift
    return result;
  }
  const double z = (u - mu - 0.5) / std::sqrt(variance);
  result.p_value = std::min(1.0, std::erfc(z / std::sqrt(2.0)));
  return result;
}

}  // namespace ped::reports
