// The vectorisable exp used by the tiled kernels, against std::exp on x <= 0.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

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

}  // namespace
}  // namespace ped
