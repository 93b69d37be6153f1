// LIBXSMM 1.17 generates column-major C = A B and C = A B^T (no transposed A), alpha 1, beta 0 or 1.
// A row-major (r, c) matrix with leading dimension ld is the column-major (c, r) matrix with the same
// ld, so the row-major products become
//   nn: C = A B      ->  C^T = B^T A^T : column-major NN on (b, a)
//   tn: C = A^T B    ->  C^T = B^T A   : column-major NT on (b, a)
//   nt: C = A B^T    ->  C^T = B A^T   : needs a transposed first operand, so B is copied transposed
//                                        into per-thread scratch, then NN on (scratch, a).
// alpha != 1: with beta 0, C is scaled after the product, C = alpha (A B), as OpenBLAS applies
// alpha: a score tile S = s Q K^T recomputed here in a backward pass then stays close to the bits of
// the wider product (OpenBLAS) its forward computed (scaling each K element first instead put scores
// of 2e4 a few ulp apart: verify's SdpaAccuracy float test failed on the blocked kernel's dK, dV).
// With beta 1, alpha goes into the copy of B (nt: the transposed copy itself).
#include "variants/xsmm_gemm.hpp"

#include <cblas.h>
#include <libxsmm.h>

#include <cstddef>
#include <vector>

namespace ped::detail::xsmm {
namespace {

void blas(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void blas(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Per-thread scratch of at least n elements (at most kMaxDim^2: the operand copies).
template <class T>
T* scratch(std::size_t n) {
  thread_local std::vector<T> buffer;
  if (buffer.size() < n) buffer.resize(n);
  return buffer.data();
}

// b (rows, cols) with leading dimension ldb, times alpha, into tight scratch; b itself when alpha = 1.
template <class T>
const T* scaled(int rows, int cols, T alpha, const T* b, int& ldb) {
  if (alpha == T{1}) return b;
  T* out = scratch<T>(static_cast<std::size_t>(rows) * cols);
  for (int r = 0; r < rows; ++r) {
    const T* in = b + static_cast<std::ptrdiff_t>(r) * ldb;
    T* o = out + static_cast<std::ptrdiff_t>(r) * cols;
#pragma omp simd
    for (int c = 0; c < cols; ++c) o[c] = alpha * in[c];
  }
  ldb = cols;
  return out;
}

// alpha B^T (kk, n) into tight scratch, B (n, kk) with leading dimension ldb, in 16 x 16 blocks (a
// whole row of B at a time would write kk cache lines a power-of-two stride apart: conflict misses
// once kk > 64).
template <class T>
const T* transposed(int n, int kk, T alpha, const T* b, int ldb) {
  T* bt = scratch<T>(static_cast<std::size_t>(kk) * n);
  constexpr int kBlock = 16;
  for (int j0 = 0; j0 < n; j0 += kBlock) {
    const int j1 = j0 + kBlock < n ? j0 + kBlock : n;
    for (int p0 = 0; p0 < kk; p0 += kBlock) {
      const int p1 = p0 + kBlock < kk ? p0 + kBlock : kk;
      for (int p = p0; p < p1; ++p) {
        T* out = bt + static_cast<std::ptrdiff_t>(p) * n;
        for (int j = j0; j < j1; ++j) out[j] = alpha * b[static_cast<std::ptrdiff_t>(j) * ldb + p];
      }
    }
  }
  return bt;
}

// C (m, n) *= alpha, row by row.
template <class T>
void scale_rows(int m, int n, T alpha, T* c, int ldc) {
  for (int i = 0; i < m; ++i) {
    T* row = c + static_cast<std::ptrdiff_t>(i) * ldc;
#pragma omp simd
    for (int j = 0; j < n; ++j) row[j] *= alpha;
  }
}

// Each falls back to OpenBLAS where handles() says no or LIBXSMM has no kernel.
template <class T>
void nn(int m, int n, int kk, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c, int ldc) {
  if (handles(m, n, kk, beta)) {
    const bool beta1 = beta != T{0};
    int ldbs = ldb;
    const T* bs = beta1 ? scaled(kk, n, alpha, b, ldbs) : b;
    if (const Kernel<T> f = dispatch(T{}, n, m, kk, ldbs, lda, ldc, beta1, false)) {
      f(bs, a, c);
      if (!beta1 && alpha != T{1}) scale_rows(m, n, alpha, c, ldc);
      return;
    }
  }
  blas(CblasNoTrans, CblasNoTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <class T>
void tn(int m, int n, int kk, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c, int ldc) {
  if (handles(m, n, kk, beta)) {
    const bool beta1 = beta != T{0};
    int ldbs = ldb;
    const T* bs = beta1 ? scaled(kk, n, alpha, b, ldbs) : b;
    if (const Kernel<T> f = dispatch(T{}, n, m, kk, ldbs, lda, ldc, beta1, true)) {
      f(bs, a, c);
      if (!beta1 && alpha != T{1}) scale_rows(m, n, alpha, c, ldc);
      return;
    }
  }
  blas(CblasTrans, CblasNoTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <class T>
void nt(int m, int n, int kk, T alpha, const T* a, int lda, const T* b, int ldb, T beta, T* c, int ldc) {
  if (handles(m, n, kk, beta)) {
    const bool beta1 = beta != T{0};
    if (const Kernel<T> f = dispatch(T{}, n, m, kk, n, lda, ldc, beta1, false)) {
      f(transposed(n, kk, beta1 ? alpha : T{1}, b, ldb), a, c);
      if (!beta1 && alpha != T{1}) scale_rows(m, n, alpha, c, ldc);
      return;
    }
  }
  blas(CblasNoTrans, CblasTrans, m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

Kernel<float> dispatch(float, int m, int n, int k, int lda, int ldb, int ldc, bool beta1, bool trans_b) {
  const float alpha = 1, beta = beta1 ? 1 : 0;
  const int flags = trans_b ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
  return libxsmm_smmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
}
Kernel<double> dispatch(double, int m, int n, int k, int lda, int ldb, int ldc, bool beta1, bool trans_b) {
  const double alpha = 1, beta = beta1 ? 1 : 0;
  const int flags = trans_b ? LIBXSMM_GEMM_FLAG_TRANS_B : LIBXSMM_GEMM_FLAG_NONE;
  const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE;
  return libxsmm_dmmdispatch(m, n, k, &lda, &ldb, &ldc, &alpha, &beta, &flags, &prefetch);
}

void gemm_nt(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
             int ldc) {
  nt(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm_nt(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb, double beta,
             double* c, int ldc) {
  nt(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm_nn(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
             int ldc) {
  nn(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm_nn(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb, double beta,
             double* c, int ldc) {
  nn(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm_tn(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
             int ldc) {
  tn(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm_tn(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb, double beta,
             double* c, int ldc) {
  tn(m, n, kk, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace ped::detail::xsmm
