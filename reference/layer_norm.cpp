#include "reference/layer_norm.hpp"

#include <cmath>

namespace ped::ref {

template <class T>
Mat<T> layer_norm_forward(const Mat<T>& x, const Col<T>& gamma, const Col<T>& beta, T eps, LayerNormCache<T>& cache) {
  constexpr const char* fn = "layer_norm_forward";
  require_nonempty(fn, "x", x);
  if (gamma.n_elem != x.n_rows) throw_invalid(fn, "gamma has ", gamma.n_elem, " elements, expected ", x.n_rows);
  if (beta.n_elem != x.n_rows) throw_invalid(fn, "beta has ", beta.n_elem, " elements, expected ", x.n_rows);
  if (!(eps > T(0)) || !std::isfinite(eps)) throw_invalid(fn, "eps = ", eps, ", expected a finite eps > 0");
  const arma::Row<T> mu = arma::mean(x, 0);
  Mat<T> xc = x.each_row() - mu;
  const arma::Row<T> var = arma::mean(arma::square(xc), 0);
  cache.rstd = T(1) / arma::sqrt(var + eps);
  cache.xhat = xc.each_row() % cache.rstd;
  Mat<T> y = cache.xhat.each_col() % gamma;
  y.each_col() += beta;
  return y;
}

template <class T>
LayerNormGrads<T> layer_norm_backward(const Mat<T>& dy, const Col<T>& gamma, const LayerNormCache<T>& cache) {
  constexpr const char* fn = "layer_norm_backward";
  require_nonempty(fn, "dy", dy);
  require_shape(fn, "dy", dy, cache.xhat.n_rows, cache.xhat.n_cols);
  if (gamma.n_elem != dy.n_rows) throw_invalid(fn, "gamma has ", gamma.n_elem, " elements, expected ", dy.n_rows);
  // forward: y = gamma o xhat + beta
  const Mat<T> g = dy.each_col() % gamma;  // dL/dxhat
  // forward: xhat = (x - mu) rstd, with mu and rstd functions of the whole column
  Mat<T> dx = g.each_row() - arma::mean(g, 0);
  dx -= cache.xhat.each_row() % arma::mean(g % cache.xhat, 0);
  dx.each_row() %= cache.rstd;
  return {.dx = std::move(dx), .dgamma = arma::sum(dy % cache.xhat, 1), .dbeta = arma::sum(dy, 1)};
}

#define PED_INSTANTIATE(T)                                                                                  \
  template Mat<T> layer_norm_forward<T>(const Mat<T>&, const Col<T>&, const Col<T>&, T, LayerNormCache<T>&); \
  template LayerNormGrads<T> layer_norm_backward<T>(const Mat<T>&, const Col<T>&, const LayerNormCache<T>&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
