#include "reference/softmax.hpp"

#include <limits>

namespace ped::ref {

template <class T>
Mat<T> softmax_rows_forward(const Mat<T>& s) {
  require_nonempty("softmax_rows_forward", "s", s);
  Col<T> rowmax = arma::max(s, 1);
  // A fully masked row has max -inf; -inf - (-inf) would be NaN, so shift it by 0 instead:
  // exp(-inf - 0) = 0 everywhere and the row stays zero.
  rowmax.transform([](T m) { return m == -std::numeric_limits<T>::infinity() ? T(0) : m; });
  Mat<T> p = arma::exp(s.each_col() - rowmax);
  Col<T> rowsum = arma::sum(p, 1);
  rowsum.transform([](T z) { return z > T(0) ? z : T(1); });  // zero rows stay zero
  p.each_col() /= rowsum;
  return p;
}

template <class T>
Mat<T> softmax_rows_backward(const Mat<T>& dp, const Mat<T>& p) {
  constexpr const char* fn = "softmax_rows_backward";
  require_nonempty(fn, "dp", dp);
  require_shape(fn, "dp", dp, p.n_rows, p.n_cols);
  // forward: p_ij = exp(s_ij) / sum_k exp(s_ik)  =>  ds_ij = p_ij (dp_ij - sum_k dp_ik p_ik)
  Mat<T> ds = dp.each_col() - arma::sum(dp % p, 1);
  return ds % p;
}

#define PED_INSTANTIATE(T)                                \
  template Mat<T> softmax_rows_forward<T>(const Mat<T>&); \
  template Mat<T> softmax_rows_backward<T>(const Mat<T>&, const Mat<T>&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
