// Linear layer with bias.
// I input width, O output width, N tokens. x (I, N), W (O, I), b (O), y (O, N).
#pragma once

#include "reference/common.hpp"

namespace ped::ref {

template <class T>
struct LinearGrads {
  Mat<T> dx;  // (I, N)
  Mat<T> dw;  // (O, I)
  Col<T> db;  // (O)
};

// forward: y = W x + b 1^T
template <class T>
Mat<T> linear_forward(const Mat<T>& x, const Mat<T>& w, const Col<T>& b);

// backward: dx = W^T dy, dW = dy x^T, db = dy 1. x is the forward input (the only saved state).
template <class T>
LinearGrads<T> linear_backward(const Mat<T>& dy, const Mat<T>& x, const Mat<T>& w);

}  // namespace ped::ref
