// Layer normalization over the feature axis of each token (each column).
// D width, N tokens. x (D, N), gamma (D), beta (D), y (D, N).
#pragma once

#include "reference/common.hpp"

namespace ped::ref {

template <class T>
struct LayerNormCache {
  Mat<T> xhat;  // (D, N) normalised input, kept for backward
  arma::Row<T> rstd;  // (N) 1 / sqrt(var + eps), kept for backward
};

template <class T>
struct LayerNormGrads {
  Mat<T> dx;      // (D, N)
  Col<T> dgamma;  // (D)
  Col<T> dbeta;   // (D)
};

// forward: mu = mean_rows(x), var = mean_rows((x - mu)^2) (biased, as PyTorch),
//          xhat = (x - mu) / sqrt(var + eps), y = gamma o xhat + beta
template <class T>
Mat<T> layer_norm_forward(const Mat<T>& x, const Col<T>& gamma, const Col<T>& beta, T eps, LayerNormCache<T>& cache);

// backward: g = gamma o dy, dx = rstd o (g - mean_rows(g) - xhat o mean_rows(g o xhat)),
//           dgamma = (dy o xhat) 1, dbeta = dy 1
template <class T>
LayerNormGrads<T> layer_norm_backward(const Mat<T>& dy, const Col<T>& gamma, const LayerNormCache<T>& cache);

}  // namespace ped::ref
