#include "reference/residual.hpp"

namespace ped::ref {

template <class T>
Mat<T> residual_forward(const Mat<T>& x, const Mat<T>& fx) {
  constexpr const char* fn = "residual_forward";
  require_nonempty(fn, "x", x);
  require_shape(fn, "fx", fx, x.n_rows, x.n_cols);
  return x + fx;
}

template <class T>
ResidualGrads<T> residual_backward(const Mat<T>& dy) {
  require_nonempty("residual_backward", "dy", dy);
  return {.dx = dy, .dfx = dy};
}

#define PED_INSTANTIATE(T)                                             \
  template Mat<T> residual_forward<T>(const Mat<T>&, const Mat<T>&); \
  template ResidualGrads<T> residual_backward<T>(const Mat<T>&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
