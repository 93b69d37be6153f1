#include "reports/fits.hpp"

#include "core/errors.hpp"

#include <cmath>

namespace ped::reports {

LogLogFit fit_log_log(std::span<const double> n, std::span<const double> y) {
  if (n.size() != y.size()) throw_invalid("fit_log_log", "size mismatch: ", n.size(), " N values, ", y.size(), " y values");
  if (n.size() < 2) throw_invalid("fit_log_log", "needs at least 2 points, got ", n.size());
  const std::size_t count = n.size();
  std::vector<double> log_n(count);
  std::vector<double> log_y(count);
  for (std::size_t i = 0; i < count; ++i) {
    if (!(std::isfinite(n[i]) && n[i] > 0.0)) throw_invalid("fit_log_log", "N[", i, "] = ", n[i], " is not positive");
    if (!(std::isfinite(y[i]) && y[i] > 0.0)) throw_invalid("fit_log_log", "y[", i, "] = ", y[i], " is not positive");
    log_n[i] = std::log(n[i]);
    log_y[i] = std::log(y[i]);
  }
  double mean_x = 0.0;
  double mean_y = 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    mean_x += log_n[i];
    mean_y += log_y[i];
  }
  mean_x /= static_cast<double>(count);
  mean_y /= static_cast<double>(count);
  // Centred sums: no cancellation between large sum(x^2) and count mean^2.
  double sxx = 0.0;
  double sxy = 0.0;
  double syy = 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    const double dx = log_n[i] - mean_x;
    const double dy = log_y[i] - mean_y;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  if (!(sxx > 0.0)) throw_invalid("fit_log_log", "all ", count, " points have the same N = ", n[0]);
  LogLogFit fit;
  fit.points = count;
  fit.slope = sxy / sxx;
  fit.intercept = mean_y - fit.slope * mean_x;
  double ss_res = 0.0;
  for (std::size_t i = 0; i < count; ++i) {
    const double r = log_y[i] - (fit.intercept + fit.slope * log_n[i]);
    ss_res += r * r;
  }
  fit.r_squared = syy > 0.0 ? 1.0 - ss_res / syy : 1.0;
  return fit;
}

std::vector<Crossover> find_crossovers(std::span<const double> n, std::span<const double> a,
                                       std::span<const double> b) {
  if (n.size() != a.size() || n.size() != b.size()) {
    throw_invalid("find_crossovers", "size mismatch: ", n.size(), " N, ", a.size(), " a, ", b.size(), " b values");
  }
  std::vector<double> d(n.size());
  for (std::size_t i = 0; i < n.size(); ++i) {
    if (!(n[i] > 0.0 && a[i] > 0.0 && b[i] > 0.0)) {
      throw_invalid("find_crossovers", "non-positive value at ", i, ": N = ", n[i], ", a = ", a[i], ", b = ", b[i]);
    }
    if (i > 0 && !(n[i] > n[i - 1])) throw_invalid("find_crossovers", "N not increasing at ", i, ": ", n[i - 1], ", ", n[i]);
    d[i] = std::log(a[i]) - std::log(b[i]);
  }
  std::vector<Crossover> crossings;
  // `last_sign` is the sign of d at the last point where it was non-zero; a crossing is a change of it.
  int last_sign = 0;
  std::size_t last_index = 0;
  for (std::size_t i = 0; i < d.size(); ++i) {
    const int sign = (d[i] > 0.0) - (d[i] < 0.0);
    if (sign == 0) continue;
    if (last_sign != 0 && sign != last_sign) {
      double crossing = n[last_index + 1];  // d = 0 at measured points in between: they meet at the first
      if (i == last_index + 1) {
        const double x0 = std::log(n[last_index]);
        const double x1 = std::log(n[i]);
        crossing = std::exp(x0 + (x1 - x0) * d[last_index] / (d[last_index] - d[i]));
      }
      crossings.push_back({crossing, sign < 0});
    }
    last_sign = sign;
    last_index = i;
  }
  return crossings;
}

}  // namespace ped::reports
