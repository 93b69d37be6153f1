#include "reference/gelu.hpp"

#include <sleef.h>

#include <cmath>
#include <cstring>
#include <numbers>

#include "variants/kernels.hpp"  // exp_nonpositive, the kernels' vectorisable exp polynomial

namespace ped::ref {

const char* to_string(GeluApprox approx) { return approx == GeluApprox::tanh ? "tanh" : "erf"; }

namespace {

using ped::detail::exp_nonpositive;

constexpr double kCubic = 0.044715;
template <class T>
constexpr T kSqrt2OverPi = static_cast<T>(0.79788456080286535588);  // sqrt(2 / pi)
template <class T>
constexpr T kInvSqrt2Pi = static_cast<T>(0.5 * std::numbers::inv_sqrtpi * std::numbers::sqrt2);  // 1 / sqrt(2 pi)

// The tanh form's logistic: with u = c (x + k x^3), e = exp(-2|u|), hi = 1 / (1 + e) = sigmoid(2|u|) and
// lo = e / (1 + e) = 1 - hi; sigmoid(2u) = 0.5 (1 + tanh(u)) is hi for u >= 0 and lo otherwise. The sign
// of u is the sign of x.
template <class T>
struct Logistic {
  T s, s_times_one_minus_s;  // sigmoid(2u), sigmoid(2u) (1 - sigmoid(2u)) = (1 - tanh(u)^2) / 4
};
template <class T>
inline Logistic<T> logistic(T x) {
  const T u = kSqrt2OverPi<T> * std::fma(T(kCubic) * x, x * x, x);
  const T e = exp_nonpositive(T(-2) * std::fabs(u));
  const T hi = T(1) / (T(1) + e);
  const T lo = e * hi;
  return {x >= T(0) ? hi : lo, hi * lo};
}

// y[i] = erf(x[i] * scale) by SLEEF's vector erf (1.0 ULP) of the widest vector this build targets;
// the tail goes through the same vector function, padded, so every element gets the same code.
#if defined(__AVX512F__)
inline void sleef_erf(float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 16) _mm512_storeu_ps(y + i, Sleef_erff16_u10(_mm512_loadu_ps(y + i)));
}
inline void sleef_erf(double* y, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) _mm512_storeu_pd(y + i, Sleef_erfd8_u10(_mm512_loadu_pd(y + i)));
}
constexpr std::size_t kErfLanes = 16;
#elif defined(__AVX__)
inline void sleef_erf(float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 8) _mm256_storeu_ps(y + i, Sleef_erff8_u10(_mm256_loadu_ps(y + i)));
}
inline void sleef_erf(double* y, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 4) _mm256_storeu_pd(y + i, Sleef_erfd4_u10(_mm256_loadu_pd(y + i)));
}
constexpr std::size_t kErfLanes = 8;
#elif defined(__SSE2__)
inline void sleef_erf(float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 4) _mm_storeu_ps(y + i, Sleef_erff4_u10(_mm_loadu_ps(y + i)));
}
inline void sleef_erf(double* y, std::size_t n) {
  for (std::size_t i = 0; i < n; i += 2) _mm_storeu_pd(y + i, Sleef_erfd2_u10(_mm_loadu_pd(y + i)));
}
constexpr std::size_t kErfLanes = 4;
#else
inline void sleef_erf(float* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = Sleef_erff_u10(y[i]);
}
inline void sleef_erf(double* y, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) y[i] = Sleef_erf_u10(y[i]);
}
constexpr std::size_t kErfLanes = 1;
#endif

// out[i] = erf(x[i] / sqrt(2)); out may not alias x.
template <class T>
void erf_scaled(const T* __restrict x, T* __restrict out, std::size_t n) {
  const T inv_sqrt2 = T(1) / std::numbers::sqrt2_v<T>;
  for (std::size_t i = 0; i < n; ++i) out[i] = x[i] * inv_sqrt2;
  const std::size_t body = n - n % kErfLanes;
  sleef_erf(out, body);
  if (body == n) return;
  T tail[kErfLanes] = {};
  std::memcpy(tail, out + body, (n - body) * sizeof(T));
  sleef_erf(tail, kErfLanes);
  std::memcpy(out + body, tail, (n - body) * sizeof(T));
}

}  // namespace

template <class T>
void gelu_forward(const Mat<T>& x, GeluApprox approx, Mat<T>& y) {
  require_nonempty("gelu_forward", "x", x);
  y.set_size(x.n_rows, x.n_cols);
  const std::size_t n = x.n_elem;
  if (&y == &x) {  // in place: erf needs a separate buffer
    const Mat<T> copy = x;
    gelu_forward(copy, approx, y);
    return;
  }
  const T* __restrict xp = x.memptr();
  T* __restrict yp = y.memptr();
  if (approx == GeluApprox::tanh) {
    // forward: y = 0.5 x (1 + tanh(u)) = x sigmoid(2u)
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) yp[i] = xp[i] * logistic(xp[i]).s;
    return;
  }
  // forward: y = x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
  erf_scaled(xp, yp, n);
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) yp[i] = T(0.5) * xp[i] * (T(1) + yp[i]);
}

template <class T>
Mat<T> gelu_forward(const Mat<T>& x, GeluApprox approx) {
  Mat<T> y;
  gelu_forward(x, approx, y);
  return y;
}

template <class T>
void gelu_backward(const Mat<T>& dy, const Mat<T>& x, GeluApprox approx, Mat<T>& dx) {
  constexpr const char* fn = "gelu_backward";
  require_nonempty(fn, "dy", dy);
  require_shape(fn, "dy", dy, x.n_rows, x.n_cols);
  if (&dx == &x) {
    const Mat<T> copy = x;
    gelu_backward(dy, copy, approx, dx);
    return;
  }
  if (&dx != &dy) dx.set_size(x.n_rows, x.n_cols);
  const std::size_t n = x.n_elem;
  const T* xp = x.memptr();
  const T* dyp = dy.memptr();
  T* dxp = dx.memptr();  // may be dyp: each element reads dy[i] before writing dx[i]
  if (approx == GeluApprox::tanh) {
    // gelu'(x) = sigmoid(2u) + 2 x sigmoid(2u) (1 - sigmoid(2u)) du/dx, du/dx = c (1 + 3 k x^2);
    // 2 sigmoid (1 - sigmoid) = (1 - tanh(u)^2) / 2, the forward's 0.5 x (1 - t^2) du/dx
    const T c3 = kSqrt2OverPi<T> * T(3 * kCubic);
#pragma omp simd
    for (std::size_t i = 0; i < n; ++i) {
      const T xi = xp[i];
      const Logistic<T> l = logistic(xi);
      const T du = std::fma(c3 * xi, xi, kSqrt2OverPi<T>);
      dxp[i] = dyp[i] * std::fma(T(2) * xi * l.s_times_one_minus_s, du, l.s);
    }
    return;
  }
  // gelu'(x) = Phi(x) + x phi(x), phi(x) = exp(-x^2 / 2) / sqrt(2 pi)
  thread_local std::vector<T> erf_buffer;
  erf_buffer.resize(n);
  T* ep = erf_buffer.data();
  erf_scaled(xp, ep, n);
#pragma omp simd
  for (std::size_t i = 0; i < n; ++i) {
    const T xi = xp[i];
    const T cdf = T(0.5) * (T(1) + ep[i]);
    const T pdf = exp_nonpositive(T(-0.5) * xi * xi) * kInvSqrt2Pi<T>;
    dxp[i] = dyp[i] * std::fma(xi, pdf, cdf);
  }
}

template <class T>
Mat<T> gelu_backward(const Mat<T>& dy, const Mat<T>& x, GeluApprox approx) {
  Mat<T> dx;
  gelu_backward(dy, x, approx, dx);
  return dx;
}

#define PED_INSTANTIATE(T)                                                       \
  template Mat<T> gelu_forward<T>(const Mat<T>&, GeluApprox);                    \
  template void gelu_forward<T>(const Mat<T>&, GeluApprox, Mat<T>&);             \
  template Mat<T> gelu_backward<T>(const Mat<T>&, const Mat<T>&, GeluApprox);    \
  template void gelu_backward<T>(const Mat<T>&, const Mat<T>&, GeluApprox, Mat<T>&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
