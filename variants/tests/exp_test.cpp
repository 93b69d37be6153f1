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

// A few ulp: float eps 1.2e-7, double eps 2.2e-16 (range reduction and Horner rounding).
TEST(ExpNonPositive, Float) { check_exp<float>(-87.0f, 4e-7); }
TEST(ExpNonPositive, Double) { check_exp<double>(-700.0, 1e-15); }

}  // namespace
}  // namespace ped
