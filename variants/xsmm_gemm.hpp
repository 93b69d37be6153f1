// The tile GEMMs of variants/kernels.hpp (gemm_nt, gemm_nn, gemm_tn) on LIBXSMM's JIT kernels
// (internal, not installed; built where LIBXSMM is found: the kernels use it under the CMake option
// PED_LIBXSMM, ped_tile_gemm_timing measures it against OpenBLAS either way).
//
// Same contract as the wrappers: row-major, explicit leading dimensions, any alpha, beta 0 or 1
// (any other beta goes to OpenBLAS). Shapes with a dimension above kMaxDim, or none, go to OpenBLAS
// too: LIBXSMM is measured faster on the attention tiles (64 and 128), not on whole-matrix products.
// The result depends on the shape only (one kernel per shape, whatever the thread), so it is the
// same for any thread count; it is not bitwise OpenBLAS's.
#pragma once

namespace ped::detail::xsmm {

inline constexpr int kMaxDim = 128;

// LIBXSMM's kernel for the column-major product (m, n, k), alpha 1, beta 0 or 1, B transposed or
// not; nullptr where it has none. LIBXSMM keeps every kernel it generates: the first call of a
// shape generates it, later calls find it in LIBXSMM's registry. (The wrappers below call it on
// every product; ped_tile_gemm_timing also times the bare kernel.)
template <class T>
using Kernel = void (*)(const T*, const T*, T*, ...);
Kernel<float> dispatch(float, int m, int n, int k, int lda, int ldb, int ldc, bool beta1, bool trans_b);
Kernel<double> dispatch(double, int m, int n, int k, int lda, int ldb, int ldc, bool beta1, bool trans_b);

// True when the product (m, n, kk) with this beta runs on LIBXSMM (otherwise on OpenBLAS).
template <class T>
bool handles(int m, int n, int kk, T beta) {
  return m > 0 && n > 0 && kk > 0 && m <= kMaxDim && n <= kMaxDim && kk <= kMaxDim && (beta == T{0} || beta == T{1});
}

// C (m, n) <- alpha A B^T + beta C, A (m, kk), B (n, kk).
void gemm_nt(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
             int ldc);
void gemm_nt(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb, double beta,
             double* c, int ldc);
// C (m, n) <- alpha A B + beta C, A (m, kk), B (kk, n).
void gemm_nn(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
             int ldc);
void gemm_nn(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb, double beta,
             double* c, int ldc);
// C (m, n) <- alpha A^T B + beta C, A (kk, m), B (kk, n).
void gemm_tn(int m, int n, int kk, float alpha, const float* a, int lda, const float* b, int ldb, float beta, float* c,
             int ldc);
void gemm_tn(int m, int n, int kk, double alpha, const double* a, int lda, const double* b, int ldb, double beta,
             double* c, int ldc);

}  // namespace ped::detail::xsmm
