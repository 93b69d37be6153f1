// The vectorised GELU: each element's value depends on that element alone (the same bits whatever the
// shape, so a ragged tail gets the vector code's values too), and forward and backward stay within a
// stated distance of the formulas evaluated in long double with tanhl / erfl / expl.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <random>

#include "reference/gelu.hpp"

namespace ped::ref {
namespace {

long double exact_forward(long double x, GeluApprox approx) {
  if (approx == GeluApprox::tanh) {
    const long double c = std::sqrt(2.0L / std::numbers::pi_v<long double>);
    return 0.5L * x * (1 + std::tanh(c * (x + 0.044715L * x * x * x)));
  }
  return 0.5L * x * (1 + std::erf(x / std::numbers::sqrt2_v<long double>));
}
long double exact_derivative(long double x, GeluApprox approx) {
  if (approx == GeluApprox::tanh) {
    const long double c = std::sqrt(2.0L / std::numbers::pi_v<long double>);
    const long double t = std::tanh(c * (x + 0.044715L * x * x * x));
    return 0.5L * (1 + t) + 0.5L * x * (1 - t * t) * c * (1 + 3 * 0.044715L * x * x);
  }
  const long double pdf = std::exp(-0.5L * x * x) / std::sqrt(2 * std::numbers::pi_v<long double>);
  return 0.5L * (1 + std::erf(x / std::numbers::sqrt2_v<long double>)) + x * pdf;
}

template <class T>
void expect_elementwise(GeluApprox approx) {
  std::mt19937_64 rng(1);
  std::normal_distribution<double> normal(0.0, 3.0);
  for (arma::uword n = 1; n <= 41; n += 4) {
    Mat<T> x(n, 3), dy(n, 3);
    for (T& v : x) v = static_cast<T>(normal(rng));
    for (T& v : dy) v = static_cast<T>(normal(rng));
    const Mat<T> y = gelu_forward(x, approx), dx = gelu_backward(dy, x, approx);
    for (arma::uword i = 0; i < x.n_elem; ++i) {
      const Mat<T> one(1, 1, arma::fill::value(x(i))), done(1, 1, arma::fill::value(dy(i)));
      EXPECT_EQ(y(i), gelu_forward(one, approx)(0)) << to_string(approx) << " element " << i << " of " << x.n_elem;
      EXPECT_EQ(dx(i), gelu_backward(done, one, approx)(0)) << to_string(approx) << " element " << i;
    }
  }
}

TEST(Gelu, EachElementIndependentOfTheShape) {
  for (const GeluApprox approx : {GeluApprox::tanh, GeluApprox::erf}) {
    expect_elementwise<float>(approx);
    expect_elementwise<double>(approx);
  }
}

// |y - exact| <= tol (|exact| + 1): a few units in the last place of the type at the scale of the
// output or of 1, whichever is larger (the input rounding alone moves x phi(x) by one unit of x).
template <class T>
void expect_accurate(GeluApprox approx, double tol) {
  Mat<T> x(1, 40001), dy(1, 40001, arma::fill::ones);
  for (arma::uword i = 0; i < x.n_elem; ++i) x(i) = static_cast<T>(-10.0 + 20.0 * static_cast<double>(i) / 40000.0);
  const Mat<T> y = gelu_forward(x, approx), dx = gelu_backward(dy, x, approx);
  double worst_y = 0, worst_dx = 0;
  for (arma::uword i = 0; i < x.n_elem; ++i) {
    const long double xi = x(i), ey = exact_forward(xi, approx), ed = exact_derivative(xi, approx);
    worst_y = std::max(worst_y, static_cast<double>(std::fabs(y(i) - ey) / (std::fabs(ey) + 1)));
    worst_dx = std::max(worst_dx, static_cast<double>(std::fabs(dx(i) - ed) / (std::fabs(ed) + 1)));
  }
  EXPECT_LE(worst_y, tol) << to_string(approx) << " forward";
  EXPECT_LE(worst_dx, tol) << to_string(approx) << " backward";
  std::printf("gelu %s %s: forward %.3g, backward %.3g\n", to_string(approx), sizeof(T) == 4 ? "float" : "double",
              worst_y, worst_dx);
}

TEST(Gelu, CloseToTheFormulasInLongDouble) {
  for (const GeluApprox approx : {GeluApprox::tanh, GeluApprox::erf}) {
    expect_accurate<float>(approx, 4 * 0x1p-23);
    expect_accurate<double>(approx, 4 * 0x1p-52);
  }
}

}  // namespace
}  // namespace ped::ref
