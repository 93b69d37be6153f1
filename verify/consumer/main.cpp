// Uses the installed reference library: a layer norm's forward and backward, checked by hand.
#include <reference/layer_norm.hpp>

#include <cmath>
#include <cstdio>

int main() {
  const arma::mat x = {{1.0, -2.0}, {3.0, 0.5}, {-1.0, 4.0}};  // D = 3, N = 2
  const arma::vec gamma(3, arma::fill::ones), beta(3, arma::fill::zeros);
  ped::ref::LayerNormCache<double> cache;
  const arma::mat y = ped::ref::layer_norm_forward(x, gamma, beta, 1e-5, cache);
  // each normalised column has mean 0 and (biased) variance ~1
  const double mean_err = arma::abs(arma::mean(y, 0)).max();
  const double var_err = arma::abs(arma::mean(arma::square(y), 0) - 1.0).max();
  // d(sum y)/dx = 0: layer norm's output sums to sum(beta) whatever x is
  const arma::mat dx = ped::ref::layer_norm_backward(arma::mat(3, 2, arma::fill::ones), gamma, cache).dx;
  const double grad_err = arma::abs(dx).max();
  std::printf("mean %.3g var %.3g grad %.3g\n", mean_err, var_err, grad_err);
  return mean_err < 1e-12 && var_err < 1e-4 && grad_err < 1e-12 ? 0 : 1;
}
