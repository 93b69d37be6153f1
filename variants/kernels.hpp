// Building blocks shared by the attention variants (internal, not installed):
// argument checks, BLAS wrappers, a vectorisable exp, aligned scratch and tile masking.
//
// B batch, H heads, Nq query tokens, Nk key tokens, d head dim, s scale.
// All matrices are row-major with an explicit leading dimension (ld = elements between rows).
#pragma once

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>

#include "variants/attention.hpp"
#include "variants/common.hpp"

namespace ped::detail {

// ---- argument checks (defined in attention.cpp) -------------------------------------------------

// Validates sizes, product overflow, pointers, scale, options and mask for a forward call.
template <class T>
void check_forward_args(const char* fn, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                        const T* k, const T* v, const T* out, const T* lse, const AttentionOptions& options);
// Same, plus dout, dq, dk, dv.
template <class T>
void check_backward_args(const char* fn, const AttentionShape& shape, const Mask& mask, T scale, const T* q,
                         const T* k, const T* v, const T* out, const T* lse, const T* dout, const T* dq,
                         const T* dk, const T* dv, const AttentionOptions& options);

inline int resolve_threads(const AttentionOptions& o) { return o.threads > 0 ? o.threads : omp_get_max_threads(); }

// Team size for a parallel loop of `units` work items: never more threads than items (a tiny
// problem runs on one thread instead of paying for a team). Results do not depend on it.
inline int team(int threads, std::int64_t units) {
  return static_cast<int>(std::max<std::int64_t>(1, std::min<std::int64_t>(threads, units)));
}

// ---- BLAS ---------------------------------------------------------------------------------------

// OpenBLAS runs single-threaded while one of our OpenMP regions calls it (no oversubscription);
// the previous setting comes back on destruction.
class BlasSingleThreaded {
 public:
  BlasSingleThreaded() : saved_(openblas_get_num_threads()) { openblas_set_num_threads(1); }
  ~BlasSingleThreaded() { openblas_set_num_threads(saved_); }
  BlasSingleThreaded(const BlasSingleThreaded&) = delete;
  BlasSingleThreaded& operator=(const BlasSingleThreaded&) = delete;

 private:
  int saved_;
};

// C (m, n) <- alpha A B^T + beta C, A (m, kk), B (n, kk).
inline void gemm_nt(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                    float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm_nt(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb,
                    double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
// C (m, n) <- alpha A B + beta C, A (m, kk), B (kk, n).
inline void gemm_nn(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                    float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm_nn(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb,
                    double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
// C (m, n) <- alpha A^T B + beta C, A (kk, m), B (kk, n).
inline void gemm_tn(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta,
                    float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
inline void gemm_tn(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb,
                    double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}

// ---- exp for x <= 0 -----------------------------------------------------------------------------

// exp(x) for x <= 0 or x = -inf, written so that a `#pragma omp simd` loop vectorises it:
// x = n ln2 + r, n = round(x / ln2), |r| <= ln2 / 2, exp(x) = 2^n * poly(r) with a Taylor polynomial whose
// truncation error is below the type's epsilon (degree 7 for float, 13 for double).
// Hazard: 2^n underflows below the smallest normal; inputs below that return 0 (the true value
// is < 1e-37 for float, < 1e-307 for double, far below the sum it is added to). -inf returns 0.
inline float exp_nonpositive(float x) {
  const float xc = std::max(x, -87.0f);  // -inf -> -87; the result is zeroed below
  // n = round(x log2 e) by the 1.5 * 2^23 trick (floor does not vectorise without -ffast-math);
  // the low mantissa bits of t hold n as an integer.
  const float t = std::fma(xc, 1.44269504088896341f, 12582912.0f);
  const float n = t - 12582912.0f;
  float r = std::fma(n, -0.693359375f, xc);  // ln2 split into an exact high part and a low part
  r = std::fma(n, 2.12194440e-4f, r);
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  const std::int32_t bits = (std::bit_cast<std::int32_t>(t) - 0x4B400000 + 127) << 23;
  const float two_n = std::bit_cast<float>(bits);
  return x < -87.0f ? 0.0f : p * two_n;
}

inline double exp_nonpositive(double x) {
  const double xc = std::max(x, -708.0);
  const double t = std::fma(xc, 1.4426950408889634074, 6755399441055744.0);  // 1.5 * 2^52 trick
  const double n = t - 6755399441055744.0;
  double r = std::fma(n, -6.93145751953125e-1, xc);
  r = std::fma(n, -1.42860682030941723212e-6, r);
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = std::fma(p, r, 1.0 / 479001600.0);
  p = std::fma(p, r, 1.0 / 39916800.0);
  p = std::fma(p, r, 1.0 / 3628800.0);
  p = std::fma(p, r, 1.0 / 362880.0);
  p = std::fma(p, r, 1.0 / 40320.0);
  p = std::fma(p, r, 1.0 / 5040.0);
  p = std::fma(p, r, 1.0 / 720.0);
  p = std::fma(p, r, 1.0 / 120.0);
  p = std::fma(p, r, 1.0 / 24.0);
  p = std::fma(p, r, 1.0 / 6.0);
  p = std::fma(p, r, 0.5);
  p = std::fma(p, r, 1.0);
  p = std::fma(p, r, 1.0);
  const std::int64_t bits = (std::bit_cast<std::int64_t>(t) - 0x4338000000000000 + 1023) << 52;
  const double two_n = std::bit_cast<double>(bits);
  return x < -708.0 ? 0.0 : p * two_n;
}

// ---- scratch ------------------------------------------------------------------------------------

// 64-byte aligned, uninitialised buffer of n elements (one per thread, reused across tiles).
template <class T>
class Scratch {
 public:
  explicit Scratch(std::size_t n)
      : p_(static_cast<T*>(::operator new(std::max<std::size_t>(n, 1) * sizeof(T), std::align_val_t{64}))) {}
  ~Scratch() { ::operator delete(p_, std::align_val_t{64}); }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  T* data() { return p_; }

 private:
  T* p_;
};

// ---- row kernels --------------------------------------------------------------------------------

template <class T>
inline T row_max(const T* x, std::int64_t n) {
  T m = -std::numeric_limits<T>::infinity();
#pragma omp simd reduction(max : m)
  for (std::int64_t c = 0; c < n; ++c) m = x[c] > m ? x[c] : m;
  return m;
}

// x[c] <- exp(x[c] - m); returns sum_c x[c] accumulated in double. m must be finite.
template <class T>
inline double exp_shift_sum(T* x, std::int64_t n, T m) {
  T sum = 0;
#pragma omp simd reduction(+ : sum)
  for (std::int64_t c = 0; c < n; ++c) {
    const T e = exp_nonpositive(x[c] - m);
    x[c] = e;
    sum += e;
  }
  return static_cast<double>(sum);
}

// Sets S[r, c] = -inf for every hidden pair of the tile rows [i0, i0 + rows), keys [j0, j0 + cols).
// Called for partial tiles only. Interval masks (none, causal, sliding window) take a per-row
// bound; the others ask Mask::visible per element.
template <class T>
void mask_tile(const Mask& mask, std::int64_t i0, std::int64_t rows, std::int64_t j0, std::int64_t cols,
               std::int64_t seq_q, std::int64_t seq_k, T* s, std::int64_t lds) {
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  std::int64_t lo = 0, hi = 0;
  if (mask.single_interval(i0, seq_q, seq_k, lo, hi)) {
    for (std::int64_t r = 0; r < rows; ++r) {
      mask.single_interval(i0 + r, seq_q, seq_k, lo, hi);
      const std::int64_t a = std::clamp<std::int64_t>(lo - j0, 0, cols);  // visible columns [a, b)
      const std::int64_t b = std::clamp<std::int64_t>(hi - j0, a, cols);
      T* row = s + r * lds;
      for (std::int64_t c = 0; c < a; ++c) row[c] = ninf;
      for (std::int64_t c = b; c < cols; ++c) row[c] = ninf;
    }
    return;
  }
  for (std::int64_t r = 0; r < rows; ++r) {
    T* row = s + r * lds;
    for (std::int64_t c = 0; c < cols; ++c) {
      if (!mask.visible(i0 + r, j0 + c, seq_q, seq_k)) row[c] = ninf;
    }
  }
}

// D_i = sum_c dO[i, c] O[i, c] for all B H Nq rows, in parallel; accumulated in double.
// D (B, H, Nq); forward: O = P V, so rowsum(dP o P) = rowsum(dO o O).
template <class T>
void rowsum_dout_out(const T* dout, const T* out, std::int64_t rows, std::int64_t d, T* dvec, int threads) {
#pragma omp parallel for num_threads(team(threads, rows * d / 16384)) schedule(static)
  for (std::int64_t i = 0; i < rows; ++i) {
    const T* a = dout + i * d;
    const T* b = out + i * d;
    double acc = 0;
    for (std::int64_t c = 0; c < d; ++c) acc += static_cast<double>(a[c]) * static_cast<double>(b[c]);
    dvec[i] = static_cast<T>(acc);
  }
}

// P (rows, w) <- exp(S - lse) row by row; a row with lse = -inf is set to 0
// (-inf - (-inf) would be NaN).
template <class T>
void probs_from_lse(T* s, std::int64_t rows, std::int64_t w, std::int64_t lds, const T* lse) {
  for (std::int64_t r = 0; r < rows; ++r) {
    T* row = s + r * lds;
    const T l = lse[r];
    if (l == -std::numeric_limits<T>::infinity()) {
      std::fill(row, row + w, T{0});
      continue;
    }
#pragma omp simd
    for (std::int64_t c = 0; c < w; ++c) row[c] = exp_nonpositive(row[c] - l);
  }
}

// dS <- P o (dP - D) in place of dP; forward: P = softmax_rows(S).
template <class T>
void softmax_grad(const T* p, T* dp, std::int64_t rows, std::int64_t w, std::int64_t ld, const T* dvec) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const T* prow = p + r * ld;
    T* row = dp + r * ld;
    const T dr = dvec[r];
#pragma omp simd
    for (std::int64_t c = 0; c < w; ++c) row[c] = prow[c] * (row[c] - dr);
  }
}

}  // namespace ped::detail
