#include "reference/attention.hpp"

#include <cmath>
#include <limits>

#include "reference/linear.hpp"
#include "reference/softmax.hpp"

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

template <class T>
void attention_heads_forward(const Mat<T>& q, const Mat<T>& k, const Mat<T>& v, arma::uword heads, T scale,
                             const Mat<T>& additive_mask, arma::uword col0, arma::Cube<T>& p, arma::uword slice0,
                             Mat<T>& o) {
  const arma::uword dh = q.n_rows / heads, n = additive_mask.n_rows;
  const arma::span cols(col0, col0 + n - 1);
  for (arma::uword h = 0; h < heads; ++h) {
    const arma::span rows(h * dh, (h + 1) * dh - 1);
    // masked entries are -inf: probability 0
    const Mat<T> s = scale * q(rows, cols).t() * k(rows, cols) + additive_mask;  // (N, N)
    p.slice(slice0 + h) = softmax_rows_forward(s);
    o(rows, cols) = v(rows, cols) * p.slice(slice0 + h).t();
  }
}

template <class T>
void attention_heads_backward(const Mat<T>& q, const Mat<T>& k, const Mat<T>& v, arma::uword heads, T scale,
                              const arma::Cube<T>& p, arma::uword slice0, const Mat<T>& dout, arma::uword col0,
                              Mat<T>& dq, Mat<T>& dk, Mat<T>& dv) {
  const arma::uword dh = q.n_rows / heads, n = p.n_rows;
  const arma::span cols(col0, col0 + n - 1);
  for (arma::uword h = 0; h < heads; ++h) {
    const arma::span rows(h * dh, (h + 1) * dh - 1);
    const Mat<T>& ph = p.slice(slice0 + h);
    const Mat<T> doh = dout(rows, cols);
    // forward: O_h = V_h P_h^T
    dv(rows, cols) = doh * ph;
    const Mat<T> dph = doh.t() * v(rows, cols);
    // forward: P_h = softmax_rows(S_h); masked entries have P = 0 and so dS = 0
    const Mat<T> dsh = softmax_rows_backward(dph, ph);
    // forward: S_h = s Q_h^T K_h
    dq(rows, cols) = scale * k(rows, cols) * dsh.t();
    dk(rows, cols) = scale * q(rows, cols) * dsh;
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
