// The vectorisable exp used by the tiled kernels, against std::exp on x <= 0, and the tanh built on it
// (the soft-cap's t and 1 - t^2) against tanhl and coshl.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "variants/kernels.hpp"

namespace ped {
namespace {

template <class T>
void check_exp(T lowest, double tol) {
  double worst = 0;
  for (int e = 0; e <= 200000; ++e) {
    const T x = static_cast<T>(lowest * (static_cast<double>(e) / 200000.0));
    const double want = std::exp(static_cast<double>(x));
    const double got = static_cast<double>(detail::exp_nonpositive(x));
    if (want > 1e-300) worst = std::max(worst, std::abs(got - want) / want);
  }
  EXPECT_LE(worst, tol);
  EXPECT_EQ(detail::exp_nonpositive(-std::numeric_limits<T>::infinity()), T{0});
  EXPECT_EQ(detail::exp_nonpositive(T{0}), T{1});
  EXPECT_EQ(detail::exp_nonpositive(static_cast<T>(-1e4)), T{0});
}

// The worst error over these fixed points is deterministic (every step is an fma or a single
// correctly rounded operation), so the bounds sit just above the measured worst: a wrong coefficient
// that moves the error past rounding fails. Float: measured worst 7.56e-8 (0.63 eps); 1/720 written as
// 1/740, or the degree-7 term dropped, gives 1.6e-7 and 2.2e-7. Double: measured worst 2.21e-16
// (1.0 eps); 1/11! off by 0.1%, or the degree-13 term dropped, gives 4.7e-16 and 3.1e-16. (The top
// one or two coefficients act below rounding: 1/5040 off by 1% moves the float worst by 2e-9.)
TEST(ExpNonPositive, Float) { check_exp<float>(-87.0f, 8e-8); }
TEST(ExpNonPositive, Double) { check_exp<double>(-700.0, 2.5e-16); }

// Worst relative errors of tanh_with_grad's t and g = 1 - t^2 over x in [-range, range] (steps
// fine enough to cross the branch point |x| = 1/4 many times) and down to tiny |x|, against long
// double (64-bit mantissa on x86, 11 bits beyond double).
template <class T>
std::pair<double, double> tanh_errors(double range) {
  double worst_t = 0, worst_g = 0;
  auto probe = [&](T x) {
    T g;
    const T t = detail::tanh_with_grad(x, g);
    const long double xl = static_cast<long double>(x);
    const long double want_t = tanhl(xl), c = coshl(xl), want_g = 1.0L / (c * c);
    if (want_t != 0) worst_t = std::max(worst_t, static_cast<double>(std::abs((static_cast<long double>(t) - want_t) / want_t)));
    if (want_g > 1e-300L) worst_g = std::max(worst_g, static_cast<double>(std::abs((static_cast<long double>(g) - want_g) / want_g)));
  };
  for (int e = -400000; e <= 400000; ++e) probe(static_cast<T>(range * (static_cast<double>(e) / 400000.0)));
  for (int e = 0; e < 2000; ++e) {  // 1e-30 .. 1: the small branch, relative accuracy near 0
    const T x = static_cast<T>(std::pow(10.0, -30.0 + 30.0 * e / 2000.0));
    probe(x);
    probe(-x);
  }
  return {worst_t, worst_g};
}

// Measured worst (deterministic, as for exp): float t 1.81e-7 and g 2.71e-7; double t 3.21e-16 and
// g 4.89e-16 (a few eps: e carries exp's error, then a subtraction and a division). A wrong Taylor
// coefficient shows near |x| = 1/4 (-17/315 written -17/300 gives t off by 7.2e-7 in float), and the
// 1 - e form in place of the series below 1/4 gives t off by 1.3e-2 at |x| = 1e-6 in float.
TEST(TanhWithGrad, Float) {
  const auto [t, g] = tanh_errors<float>(20.0);
  std::printf("worst relative error: t %.3g, 1 - t^2 %.3g\n", t, g);
  EXPECT_LE(t, 2e-7);
  EXPECT_LE(g, 3e-7);
  float g0;
  EXPECT_EQ(detail::tanh_with_grad(0.0f, g0), 0.0f);
  EXPECT_EQ(g0, 1.0f);
  float g1;
  EXPECT_EQ(detail::tanh_with_grad(-200.0f, g1), -1.0f);
  EXPECT_EQ(g1, 0.0f);
}
TEST(TanhWithGrad, Double) {
  const auto [t, g] = tanh_errors<double>(40.0);
  std::printf("worst relative error: t %.3g, 1 - t^2 %.3g\n", t, g);
  EXPECT_LE(t, 3.5e-16);
  EXPECT_LE(g, 5.5e-16);
  double g1;
  EXPECT_EQ(detail::tanh_with_grad(1e4, g1), 1.0);
  EXPECT_EQ(g1, 0.0);
}

}  // namespace
}  // namespace ped
