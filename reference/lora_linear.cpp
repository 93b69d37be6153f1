#include "reference/lora_linear.hpp"

#include <cmath>

namespace ped::ref {

template <class T>
void check_lora_params(const char* fn, const LoraLinearParams<T>& p) {
  require_nonempty(fn, "w0", p.w0);
  if (p.a.n_rows == 0) throw_invalid(fn, "rank r = 0 (A has 0 rows), expected r >= 1");
  if (p.a.n_rows > std::min(p.w0.n_rows, p.w0.n_cols)) {
    throw_invalid(fn, "rank r = ", p.a.n_rows, " exceeds min(O, I) = ", std::min(p.w0.n_rows, p.w0.n_cols));
  }
  require_shape(fn, "a", p.a, p.a.n_rows, p.w0.n_cols);
  require_shape(fn, "b", p.b, p.w0.n_rows, p.a.n_rows);
  if (p.b0.n_elem != p.w0.n_rows) throw_invalid(fn, "b0 has ", p.b0.n_elem, " elements, expected ", p.w0.n_rows);
  if (!std::isfinite(p.alpha)) throw_invalid(fn, "alpha = ", p.alpha, ", expected a finite number");
}

template <class T>
Mat<T> lora_linear_forward(const Mat<T>& x, const LoraLinearParams<T>& p, LoraLinearCache<T>& cache) {
  constexpr const char* fn = "lora_linear_forward";
  check_lora_params(fn, p);
  require_nonempty(fn, "x", x);
  if (x.n_rows != p.w0.n_cols) throw_invalid(fn, "x ", shape_of(x), " has ", x.n_rows, " rows, expected ", p.w0.n_cols);
  cache.x = x;
  cache.ax = p.a * x;
  Mat<T> y = p.w0 * x + p.scale() * (p.b * cache.ax);
  y.each_col() += p.b0;
  return y;
}

template <class T>
LoraLinearGrads<T> lora_linear_backward(const Mat<T>& dy, const LoraLinearParams<T>& p,
                                        const LoraLinearCache<T>& cache) {
  constexpr const char* fn = "lora_linear_backward";
  check_lora_params(fn, p);
  require_shape(fn, "dy", dy, p.w0.n_rows, cache.x.n_cols);
  // forward: y = W0 x + b0 1^T + s B (A x)
  const T s = p.scale();
  const Mat<T> bt_dy = p.b.t() * dy;  // (r, N)
  return {.dx = p.w0.t() * dy + s * (p.a.t() * bt_dy), .da = s * bt_dy * cache.x.t(), .db = s * dy * cache.ax.t()};
}

#define PED_INSTANTIATE(T)                                                                              \
  template void check_lora_params<T>(const char*, const LoraLinearParams<T>&);                           \
  template Mat<T> lora_linear_forward<T>(const Mat<T>&, const LoraLinearParams<T>&, LoraLinearCache<T>&); \
  template LoraLinearGrads<T> lora_linear_backward<T>(const Mat<T>&, const LoraLinearParams<T>&,         \
                                                      const LoraLinearCache<T>&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
