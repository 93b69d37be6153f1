// Residual connection. x and fx (D, N), y (D, N).
#pragma once

#include "reference/common.hpp"

namespace ped::ref {

template <class T>
struct ResidualGrads {
  Mat<T> dx;   // (D, N) gradient through the skip path
  Mat<T> dfx;  // (D, N) gradient into the branch
};

// forward: y = x + f(x)
template <class T>
Mat<T> residual_forward(const Mat<T>& x, const Mat<T>& fx);

// backward: dx = dy (skip path), dfx = dy (branch); the caller adds the branch's dx to dx.
template <class T>
ResidualGrads<T> residual_backward(const Mat<T>& dy);

}  // namespace ped::ref
