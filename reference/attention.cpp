#include "reference/attention.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "reference/linear.hpp"
#include "reference/softmax.hpp"
#include "variants/kernels.hpp"  // exp_nonpositive, the kernels' vectorisable exp polynomial

namespace ped::ref {

namespace {
template <class T>
void check_params(const char* fn, const AttentionParams<T>& p, arma::uword d) {
  require_shape(fn, "wq", p.wq, d, d);
  require_shape(fn, "wk", p.wk, d, d);
  require_shape(fn, "wv", p.wv, d, d);
  require_shape(fn, "wo", p.wo, d, d);
  require_shape(fn, "bq", p.bq, d, 1);
  require_shape(fn, "bk", p.bk, d, 1);
  require_shape(fn, "bv", p.bv, d, 1);
  require_shape(fn, "bo", p.bo, d, 1);
}
}  // namespace

template <class T>
Mat<T> additive_mask(const Mask& mask, arma::uword n) {
  Mat<T> m(n, n, arma::fill::zeros);
  const auto n64 = static_cast<std::int64_t>(n);
  for (arma::uword i = 0; i < n; ++i) {
    for (arma::uword j = 0; j < n; ++j) {
      if (!mask.visible(static_cast<std::int64_t>(i), static_cast<std::int64_t>(j), n64, n64)) {
        m(i, j) = -std::numeric_limits<T>::infinity();
      }
    }
  }
  return m;
}

namespace {

// Column-major C (m, n) <- alpha op(A) op(B) + beta C on raw pointers with leading dimensions: the
// per-head blocks of Q, K, V (D, *) are (dh, N) submatrices with leading dimension D, used in place.
inline void gemm_cm(bool ta, bool tb, arma::uword m, arma::uword n, arma::uword kk, float alpha, const float* a,
                    arma::uword lda, const float* b, arma::uword ldb, float beta, float* c, arma::uword ldc) {
  cblas_sgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(kk), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
              static_cast<int>(ldc));
}
inline void gemm_cm(bool ta, bool tb, arma::uword m, arma::uword n, arma::uword kk, double alpha, const double* a,
                    arma::uword lda, const double* b, arma::uword ldb, double beta, double* c, arma::uword ldc) {
  cblas_dgemm(CblasColMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, static_cast<int>(m),
              static_cast<int>(n), static_cast<int>(kk), alpha, a, static_cast<int>(lda), b, static_cast<int>(ldb), beta, c,
              static_cast<int>(ldc));
}

// The rows' workspace of one thread (a row statistic per query), kept across calls: a second call of
// the same or a smaller size allocates nothing.
template <class T>
T* row_workspace(std::size_t n) {
  thread_local std::vector<T> w;
  if (w.size() < n) w.resize(n);
  return w.data();
}

// In place on s (n, n), column-major, row i the scores of query i: s <- softmax_rows(s + mask), as
// softmax_rows_forward (a fully masked row stays zero). Vectorised along the columns (contiguous),
// exp by the kernels' polynomial (its argument s - rowmax is <= 0 or -inf).
template <class T>
void masked_softmax_rows(T* __restrict s, const T* __restrict mask, arma::uword n, T* __restrict row) {
  constexpr T minus_inf = -std::numeric_limits<T>::infinity();
  for (arma::uword i = 0; i < n; ++i) row[i] = minus_inf;
  for (arma::uword j = 0; j < n; ++j) {
    T* sj = s + j * n;
    const T* mj = mask + j * n;
#pragma omp simd
    for (arma::uword i = 0; i < n; ++i) {
      sj[i] += mj[i];
      row[i] = std::max(row[i], sj[i]);
    }
  }
  for (arma::uword i = 0; i < n; ++i) row[i] = row[i] == minus_inf ? T(0) : row[i];
  T* sum = row + n;
  for (arma::uword i = 0; i < n; ++i) sum[i] = T(0);
  for (arma::uword j = 0; j < n; ++j) {
    T* sj = s + j * n;
#pragma omp simd
    for (arma::uword i = 0; i < n; ++i) {
      sj[i] = ped::detail::exp_nonpositive(sj[i] - row[i]);
      sum[i] += sj[i];
    }
  }
  for (arma::uword i = 0; i < n; ++i) sum[i] = T(1) / (sum[i] > T(0) ? sum[i] : T(1));  // zero rows stay zero
  for (arma::uword j = 0; j < n; ++j) {
    T* sj = s + j * n;
#pragma omp simd
    for (arma::uword i = 0; i < n; ++i) sj[i] *= sum[i];
  }
}

}  // namespace

template <class T>
void attention_heads_forward(const Mat<T>& q, const Mat<T>& k, const Mat<T>& v, arma::uword heads, T scale,
                             const Mat<T>& additive_mask, arma::uword col0, arma::Cube<T>& p, arma::uword slice0,
                             Mat<T>& o) {
  const arma::uword d = q.n_rows, dh = d / heads, n = additive_mask.n_rows;
  T* row = row_workspace<T>(2 * n);
  for (arma::uword h = 0; h < heads; ++h) {
    const std::size_t at = col0 * d + h * dh;  // head h's block of sequence columns [col0, col0 + n)
    T* ph = p.slice_memptr(slice0 + h);
    // S_h = s Q_h^T K_h (N, N); masked entries are -inf: probability 0
    gemm_cm(true, false, n, n, dh, scale, q.memptr() + at, d, k.memptr() + at, d, T(0), ph, n);
    masked_softmax_rows(ph, additive_mask.memptr(), n, row);
    // O_h = V_h P_h^T (dh, N)
    gemm_cm(false, true, dh, n, n, T(1), v.memptr() + at, d, ph, n, T(0), o.memptr() + at, d);
  }
}

template <class T>
void attention_heads_backward(const Mat<T>& q, const Mat<T>& k, const Mat<T>& v, arma::uword heads, T scale,
                              const arma::Cube<T>& p, arma::uword slice0, const Mat<T>& dout, arma::uword col0,
                              Mat<T>& dq, Mat<T>& dk, Mat<T>& dv) {
  const arma::uword d = q.n_rows, dh = d / heads, n = p.n_rows;
  T* work = row_workspace<T>(n * n + n);  // dP_h then dS_h (N, N), and a row statistic (N)
  T* row = work + n * n;
  for (arma::uword h = 0; h < heads; ++h) {
    const std::size_t at = col0 * d + h * dh;
    const T* ph = p.slice_memptr(slice0 + h);
    const T* doh = dout.memptr() + at;
    // forward: O_h = V_h P_h^T  =>  dV_h = dO_h P_h, dP_h = dO_h^T V_h
    gemm_cm(false, false, dh, n, n, T(1), doh, d, ph, n, T(0), dv.memptr() + at, d);
    gemm_cm(true, false, n, n, dh, T(1), doh, d, v.memptr() + at, d, T(0), work, n);
    // forward: P_h = softmax_rows(S_h)  =>  dS_ij = P_ij (dP_ij - sum_k dP_ik P_ik); masked P = 0 gives dS = 0
    for (arma::uword i = 0; i < n; ++i) row[i] = T(0);
    for (arma::uword j = 0; j < n; ++j) {
      const T* wj = work + j * n;
      const T* pj = ph + j * n;
#pragma omp simd
      for (arma::uword i = 0; i < n; ++i) row[i] += wj[i] * pj[i];
    }
    for (arma::uword j = 0; j < n; ++j) {
      T* wj = work + j * n;
      const T* pj = ph + j * n;
#pragma omp simd
      for (arma::uword i = 0; i < n; ++i) wj[i] = (wj[i] - row[i]) * pj[i];
    }
    // forward: S_h = s Q_h^T K_h  =>  dQ_h = s K_h dS_h^T, dK_h = s Q_h dS_h
    gemm_cm(false, true, dh, n, n, scale, k.memptr() + at, d, work, n, T(0), dq.memptr() + at, d);
    gemm_cm(false, false, dh, n, n, scale, q.memptr() + at, d, work, n, T(0), dk.memptr() + at, d);
  }
}

template <class T>
Mat<T> attention_forward(const Mat<T>& x, const AttentionParams<T>& p, const AttentionConfig<T>& cfg,
                         AttentionCache<T>& cache) {
  constexpr const char* fn = "attention_forward";
  require_nonempty(fn, "x", x);
  const arma::uword d = x.n_rows;
  const arma::uword n = x.n_cols;
  if (cfg.heads == 0 || d % cfg.heads != 0) {
    throw_invalid(fn, "heads = ", cfg.heads, " does not divide the model width D = ", d);
  }
  if (!(cfg.scale >= T(0)) || !std::isfinite(cfg.scale)) throw_invalid(fn, "scale = ", cfg.scale, ", expected >= 0");
  check_params(fn, p, d);
  const arma::uword dh = d / cfg.heads;
  cache.heads = cfg.heads;
  cache.scale = cfg.scale > T(0) ? cfg.scale : T(1) / std::sqrt(static_cast<T>(dh));
  cache.x = x;
  cache.q = linear_forward(x, p.wq, p.bq);
  cache.k = linear_forward(x, p.wk, p.bk);
  cache.v = linear_forward(x, p.wv, p.bv);
  cache.p.set_size(n, n, cfg.heads);
  cache.o.set_size(d, n);
  attention_heads_forward(cache.q, cache.k, cache.v, cfg.heads, cache.scale, additive_mask<T>(cfg.causal ? Mask::causal() : Mask::none(), n), 0,
                          cache.p, 0, cache.o);
  return linear_forward(cache.o, p.wo, p.bo);
}

template <class T>
AttentionGrads<T> attention_backward(const Mat<T>& dy, const AttentionParams<T>& p, const AttentionCache<T>& cache) {
  constexpr const char* fn = "attention_backward";
  require_nonempty(fn, "dy", dy);
  const arma::uword d = cache.x.n_rows;
  require_shape(fn, "dy", dy, d, cache.x.n_cols);
  check_params(fn, p, d);
  AttentionGrads<T> g;
  // forward: y = Wo O + bo
  LinearGrads<T> out = linear_backward(dy, cache.o, p.wo);
  g.dp.wo = std::move(out.dw);
  g.dp.bo = std::move(out.db);
  Mat<T> dq(d, cache.x.n_cols), dk(d, cache.x.n_cols), dv(d, cache.x.n_cols);
  attention_heads_backward(cache.q, cache.k, cache.v, cache.heads, cache.scale, cache.p, 0, out.dx, 0, dq, dk, dv);
  LinearGrads<T> gq = linear_backward(dq, cache.x, p.wq);
  LinearGrads<T> gk = linear_backward(dk, cache.x, p.wk);
  LinearGrads<T> gv = linear_backward(dv, cache.x, p.wv);
  g.dx = gq.dx + gk.dx + gv.dx;
  g.dp.wq = std::move(gq.dw);
  g.dp.bq = std::move(gq.db);
  g.dp.wk = std::move(gk.dw);
  g.dp.bk = std::move(gk.db);
  g.dp.wv = std::move(gv.dw);
  g.dp.bv = std::move(gv.db);
  return g;
}

#define PED_INSTANTIATE(T)                                                                                  \
  template Mat<T> additive_mask<T>(const Mask&, arma::uword);                                                \
  template void attention_heads_forward<T>(const Mat<T>&, const Mat<T>&, const Mat<T>&, arma::uword, T,     \
                                           const Mat<T>&, arma::uword, arma::Cube<T>&, arma::uword, Mat<T>&); \
  template void attention_heads_backward<T>(const Mat<T>&, const Mat<T>&, const Mat<T>&, arma::uword, T,    \
                                            const arma::Cube<T>&, arma::uword, const Mat<T>&, arma::uword,   \
                                            Mat<T>&, Mat<T>&, Mat<T>&);                                      \
  template Mat<T> attention_forward<T>(const Mat<T>&, const AttentionParams<T>&, const AttentionConfig<T>&, \
                                       AttentionCache<T>&);                                                 \
  template AttentionGrads<T> attention_backward<T>(const Mat<T>&, const AttentionParams<T>&, const AttentionCache<T>&);
PED_INSTANTIATE(float)
PED_INSTANTIATE(double)
#undef PED_INSTANTIATE

}  // namespace ped::ref
