// GELU activation, elementwise. x and y have any shape.
//
// Vectorised: tanh through the logistic form 0.5 (1 + tanh(u)) = 1 / (1 + exp(-2u)) with the exp
// polynomial of the attention kernels (variants/kernels.hpp, exp_nonpositive: exp(-2|u|) only, so
// nothing overflows and nothing cancels), erf through SLEEF's vector erf (1.0 ULP), the GELU'
// exp(-x^2 / 2) through the same exp polynomial. Results are a function of each element alone (a
// tail element gets the same vector code as the rest), so they do not depend on the shape or thread
// count. Accuracy: see the GELU section of the README.
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
// The same into y, resized to x's shape (no allocation when it already has it).
template <class T>
void gelu_forward(const Mat<T>& x, GeluApprox approx, Mat<T>& y);

// backward: dx = dy o gelu'(x); x is the forward input (the only saved state).
//   tanh: gelu'(x) = 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2), t = tanh(...)
//   erf:  gelu'(x) = Phi(x) + x phi(x)
template <class T>
Mat<T> gelu_backward(const Mat<T>& dy, const Mat<T>& x, GeluApprox approx);
// The same into dx, resized to x's shape; dx may be dy itself (elementwise).
template <class T>
void gelu_backward(const Mat<T>& dy, const Mat<T>& x, GeluApprox approx, Mat<T>& dx);

}  // namespace ped::ref
