// GELU feed-forward block. D width, F hidden width, N tokens. x (D, N), y (D, N).
#pragma once

#include "reference/common.hpp"
#include "reference/gelu.hpp"

namespace ped::ref {

template <class T>
struct FeedForwardParams {
  Mat<T> w1;  // (F, D)
  Col<T> b1;  // (F)
  Mat<T> w2;  // (D, F)
  Col<T> b2;  // (D)
};

template <class T>
struct FeedForwardCache {
  Mat<T> x;  // (D, N) input
  Mat<T> h;  // (F, N) pre-activation W1 x + b1
  Mat<T> a;  // (F, N) gelu(h)
  GeluApprox approx = GeluApprox::tanh;
};

template <class T>
struct FeedForwardGrads {
  Mat<T> dx;               // (D, N)
  FeedForwardParams<T> dp;  // same shapes as the parameters
};

// forward: h = W1 x + b1, a = gelu(h), y = W2 a + b2
template <class T>
Mat<T> feed_forward_forward(const Mat<T>& x, const FeedForwardParams<T>& p, GeluApprox approx,
                            FeedForwardCache<T>& cache);

// backward: dW2 = dy a^T, db2 = dy 1, da = W2^T dy, dh = da o gelu'(h), dW1 = dh x^T, db1 = dh 1, dx = W1^T dh
template <class T>
FeedForwardGrads<T> feed_forward_backward(const Mat<T>& dy, const FeedForwardParams<T>& p,
                                          const FeedForwardCache<T>& cache);

}  // namespace ped::ref
