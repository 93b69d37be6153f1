// GELU activation, elementwise. x and y have any shape.
#pragma once

#include "reference/common.hpp"

namespace ped::ref {

enum class GeluApprox {
  tanh,  // GPT-2: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  erf,   // exact: x Phi(x) = 0.5 x (1 + erf(x / sqrt(2)))
};

const char* to_string(GeluApprox approx);

template <class T>
Mat<T> gelu_forward(const Mat<T>& x, GeluApprox approx);

// backward: dx = dy o gelu'(x); x is the forward input (the only saved state).
//   tanh: gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t = tanh(...)
//   erf:  gelu'(x) = Phi(x) + x phi(x)
template <class T>
Mat<T> gelu_backward(const Mat<T>& dy, const Mat<T>& x, GeluApprox approx);

}  // namespace ped::ref
