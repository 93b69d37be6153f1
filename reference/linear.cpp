#include "reference/linear.hpp"

namespace ped::ref {

template <class T>
Mat<T> linear_forward(const Mat<T>& x, const Mat<T>& w, const Col<T>& b) {
  constexpr const char* fn = "linear_forward";
  require_nonempty(fn, "x", x);
  require_nonempty(fn, "w", w);
  if (w.n_cols != x.n_rows) throw_invalid(fn, "w ", shape_of(w), " does not multiply x ", shape_of(x));
  if (b.n_elem != w.n_rows) throw_invalid(fn, "b has ", b.n_elem, " elements, expected ", w.n_rows);
  Mat<T> y = w * x;
  y.each_col() += b;
  return y;
}

template <class T>
LinearGrads<T> linear_backward(const Mat<T>& dy, const Mat<T>& x, const Mat<T>& w) {
  constexpr const char* fn = "linear_backward";
  require_nonempty(fn, "dy", dy);
  require_nonempty(fn, "x", x);
  if (w.n_cols != x.n_rows) throw_invalid(fn, "w ", shape_of(w), " does not multiply x ", shape_of(x));
  require_shape(fn, "dy", dy, w.n_rows, x.n_cols);
  // forward: y = W x + b 1^T
  return {.dx = w.t() * dy, .dw = dy * x.t(), .db = arma::sum(dy, 1)};
}

#define PED_INSTANTIATE(T)                                                       \
  template Mat<T> linear_forward<T>(const Mat<T>&, const Mat<T>&, const Col<T>&); \
  template LinearGrads<T> linear_backward<T>(const Mat<T>&, const Mat<T>&, const Mat<T>&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
