#include "reference/gelu.hpp"

#include <cmath>
#include <numbers>

namespace ped::ref {

const char* to_string(GeluApprox approx) { return approx == GeluApprox::tanh ? "tanh" : "erf"; }

namespace {
constexpr double kCubic = 0.044715;
template <class T>
T sqrt_2_over_pi() {
  return static_cast<T>(std::sqrt(2.0 / std::numbers::pi));
}
}  // namespace

template <class T>
Mat<T> gelu_forward(const Mat<T>& x, GeluApprox approx) {
  require_nonempty("gelu_forward", "x", x);
  if (approx == GeluApprox::tanh) {
    const T c = sqrt_2_over_pi<T>();
    const Mat<T> t = arma::tanh(c * (x + T(kCubic) * (x % arma::square(x))));
    return T(0.5) * x % (T(1) + t);
  }
  return T(0.5) * x % (T(1) + arma::erf(x / std::numbers::sqrt2_v<T>));
}

template <class T>
Mat<T> gelu_backward(const Mat<T>& dy, const Mat<T>& x, GeluApprox approx) {
  constexpr const char* fn = "gelu_backward";
  require_nonempty(fn, "dy", dy);
  require_shape(fn, "dy", dy, x.n_rows, x.n_cols);
  if (approx == GeluApprox::tanh) {
    // forward: y = 0.5 x (1 + t), t = tanh(c (x + k x^3))
    const T c = sqrt_2_over_pi<T>();
    const Mat<T> t = arma::tanh(c * (x + T(kCubic) * (x % arma::square(x))));
    const Mat<T> dtdx = (T(1) - arma::square(t)) % (c * (T(1) + T(3 * kCubic) * arma::square(x)));
    return dy % (T(0.5) * (T(1) + t) + T(0.5) * x % dtdx);
  }
  // forward: y = x Phi(x)
  const Mat<T> cdf = T(0.5) * (T(1) + arma::erf(x / std::numbers::sqrt2_v<T>));
  const Mat<T> pdf = arma::exp(T(-0.5) * arma::square(x)) * static_cast<T>(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2);
  return dy % (cdf + x % pdf);
}

#define PED_INSTANTIATE(T)                                         \
  template Mat<T> gelu_forward<T>(const Mat<T>&, GeluApprox);      \
  template Mat<T> gelu_backward<T>(const Mat<T>&, const Mat<T>&, GeluApprox);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
