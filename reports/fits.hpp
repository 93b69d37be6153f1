// Complexity fits on log-log axes: y ~ c N^slope, and where two such curves cross.
#pragma once

#include <span>
#include <vector>

namespace ped::reports {

// Least squares of log y on log N: log y = intercept + slope log N.
//   slope = S_xy / S_xx, intercept = mean(log y) - slope mean(log N),
//   R^2 = 1 - SS_res / SS_tot (1 when SS_tot = 0 and the fit is exact).
// Natural logarithms; slope is the empirical exponent (2 for time ~ N^2).
struct LogLogFit {
  double slope = 0.0;
  double intercept = 0.0;
  double r_squared = 0.0;
  std::size_t points = 0;
};

// Needs >= 2 points, every N and y positive and finite, and at least two distinct N; throws
// std::invalid_argument naming the offending value otherwise.
LogLogFit fit_log_log(std::span<const double> n, std::span<const double> y);

// One crossing of two measured curves a(N) and b(N) on common, increasing N values.
struct Crossover {
  double n = 0.0;             // interpolated N where log a = log b
  bool a_faster_after = false;  // true: a is below b for N above the crossing (a overtakes b)
};

// Crossings of the log-log polylines through (log N_i, log a_i) and (log N_i, log b_i): where
// d_i = log a_i - log b_i changes sign between N_i and N_(i+1), the crossing is
//   log N* = log N_i + (log N_(i+1) - log N_i) d_i / (d_i - d_(i+1)),
// exact when a and b are power laws. A point with d_i = 0 between opposite signs counts once.
// n must be strictly increasing; a, b positive.
std::vector<Crossover> find_crossovers(std::span<const double> n, std::span<const double> a,
                                       std::span<const double> b);

}  // namespace ped::reports
